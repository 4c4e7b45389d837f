/// Runs seeded schedules through `Simulation` in episodes (fresh cores each), and shrinks a failing
/// episode to the shortest schedule that still fails. The same seed always replays the same run.
public enum Simulator {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var seed: UInt64
        public var episode: Int
        public var violation: Violation
        /// The shortest failing schedule found; `replay(seed:episode:schedule:)` fails on it again.
        public var schedule: [Action]
        public var originalLength: Int

        public var description: String {
            """
            simulation failed: seed \(seed), episode \(episode): \(violation)
            replay the whole run with: make soak SEED=\(seed)
            shortest failing schedule (\(schedule.count) of \(originalLength) steps):
            \(schedule.enumerated().map { "  \($0.offset + 1). \($0.element)" }.joined(separator: "\n"))
            """
        }
    }

    public struct Report: Sendable {
        public var steps: Int
        public var episodes: Int
        public var failure: Failure?
        /// How often each kind of message was seen over the clean episodes ("router offer.expired", ...).
        public var tally: [String: Int] = [:]
    }

    /// Runs `steps` schedule steps from `seed`, `episodeLength` steps per episode.
    public static func run(
        seed: UInt64, steps: Int, episodeLength: Int = 1_000, generator: ScheduleGenerator = ScheduleGenerator(),
        fault: Fault? = nil
    ) -> Report {
        var done = 0
        var episode = 0
        var tally: [String: Int] = [:]
        while done < steps {
            let length = min(episodeLength, steps - done)
            let schedule = self.schedule(seed: seed, episode: episode, length: length, generator: generator)
            var simulation = Simulation(generator: generator, seed: seed &+ UInt64(episode), fault: fault)
            do {
                try simulation.run(schedule)
                tally.merge(simulation.oracle.tally, uniquingKeysWith: +)
            } catch let violation {
                let shortest = shrink(schedule, seed: seed, episode: episode, generator: generator, fault: fault, like: violation)
                let final = replay(seed: seed, episode: episode, schedule: shortest, generator: generator, fault: fault) ?? violation
                return Report(
                    steps: done + violation.step, episodes: episode + 1,
                    failure: Failure(seed: seed, episode: episode, violation: final, schedule: shortest, originalLength: schedule.count),
                    tally: tally)
            }
            done += length
            episode += 1
        }
        return Report(steps: done, episodes: episode, failure: nil, tally: tally)
    }

    public static func schedule(seed: UInt64, episode: Int, length: Int, generator: ScheduleGenerator = ScheduleGenerator()) -> [Action] {
        var random = SeededRandom.derived(from: seed, UInt64(episode))
        return generator.schedule(length: length, using: &random)
    }

    /// Runs one episode's schedule on fresh cores; the first broken invariant, or nil.
    public static func replay(
        seed: UInt64, episode: Int, schedule: [Action], generator: ScheduleGenerator = ScheduleGenerator(), fault: Fault? = nil
    ) -> Violation? {
        var simulation = Simulation(generator: generator, seed: seed &+ UInt64(episode), fault: fault)
        do {
            try simulation.run(schedule)
            return nil
        } catch {
            return error
        }
    }

    /// Delta debugging: drop ever smaller chunks while the run still fails the same way (same message,
    /// ignoring the names and numbers that change when steps go).
    static func shrink(
        _ schedule: [Action], seed: UInt64, episode: Int, generator: ScheduleGenerator, fault: Fault?, like original: Violation
    ) -> [Action] {
        let kind = signature(of: original)
        var current = Array(schedule.prefix(original.step))
        var chunk = max(1, current.count / 2)
        var budget = 3_000
        while chunk >= 1, budget > 0 {
            var removedAny = false
            var start = 0
            while start < current.count, budget > 0 {
                var candidate = current
                candidate.removeSubrange(start..<min(start + chunk, candidate.count))
                budget -= 1
                if let violation = replay(seed: seed, episode: episode, schedule: candidate, generator: generator, fault: fault),
                   signature(of: violation) == kind
                {
                    current = Array(candidate.prefix(violation.step))
                    removedAny = true
                } else {
                    start += chunk
                }
            }
            if !removedAny { chunk /= 2 }
        }
        return current
    }

    /// A violation's message with identifiers and numbers blanked out, to tell one kind of failure from another.
    static func signature(of violation: Violation) -> String {
        String(violation.message.map { $0.isNumber ? "#" : $0 })
            .split(separator: " ")
            .map { word in word.contains("#") ? "#" : String(word) }
            .joined(separator: " ")
    }
}
