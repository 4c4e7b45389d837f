# `make run` and `make test` are all a newcomer needs; README.md explains every target.

# Build folder for every swift command; give each checkout or user its own when sharing a machine.
SCRATCH_PATH ?= .build
SWIFT_FLAGS := --scratch-path $(SCRATCH_PATH)
NODE := scripts/rabbitmq-node.sh
SWIFT := scripts/swift.sh

.PHONY: run test bench soak chaos up down build clean wipe

# The deterministic simulator for as many steps as asked: make soak STEPS=10000000 [SEED=n].
soak:
	STEPS=$(STEPS) SEED=$(SEED) $(SWIFT) run $(SWIFT_FLAGS) -c release Soak

# The system suite's chaos test (instances of every service killed at random through whole lifecycles) for as
# long as asked: make chaos DURATION=600 [SEED=n]. Its node and the services' logs go to a temporary folder,
# removed after a pass and kept after a failure.
chaos:
	scripts/install-deps.sh
	@root=$$(mktemp -d "$${TMPDIR:-/tmp}/switchboard-chaos.XXXXXX") && chmod 755 "$$root" && \
	if SWITCHBOARD_TEST_ROOT="$$root" SWITCHBOARD_CHAOS_SECONDS=$(DURATION) SWITCHBOARD_CHAOS_SEED=$(SEED) \
		tests/system/run.sh $(SWIFT_FLAGS) -- -s -k killed_at_random; then rm -rf "$$root"; \
	else echo "chaos: failed; the node's data and the services' logs are in $$root"; exit 1; fi

# Starts the node and the three services (make up), then the live demo in the foreground until Ctrl-C.
run: up
	"$$($(SWIFT) build $(SWIFT_FLAGS) -c release --show-bin-path)/switchboard-demo"

test:
	scripts/test.sh $(SWIFT_FLAGS)

# The AMQP layer against the C client, the pure cores, then the whole system against the broker's ceiling.
bench:
	SCRATCH_PATH=$(SCRATCH_PATH) bench/run.sh
	$(SWIFT) run $(SWIFT_FLAGS) -c release CoreBench
	SCRATCH_PATH=$(SCRATCH_PATH) bench/system.sh
	@echo "bench: results in bench-results/ (amqp.md, core.md, system.md and their .json)"

# The local node and switchboard-router, -notifier, -closer in the background (logs in var/log).
up:
	SCRATCH_PATH=$(SCRATCH_PATH) scripts/up.sh

# Stops the three services, then the local node.
down:
	scripts/down.sh

build:
	$(SWIFT) build $(SWIFT_FLAGS)

# Stops the services and the local node, and deletes the node's data (var/rabbitmq).
wipe: down
	$(NODE) wipe

clean:
	rm -rf $(SCRATCH_PATH) bench/build
