import SwitchboardCommon
import Testing

@Suite struct AgentCommandUsersTests {
    private let acme = try! DeskID("acme")
    private let zeta = try! DeskID("zeta")

    @Test func rulesForOneUserAddUpAndAStarCoversEveryDesk() throws {
        let users = try AgentCommandUsers(rules: ["gateway-acme:acme", " gateway-acme:zeta ", "switchboard-gateway:*"])
        #expect(users.desksByUser == [
            "gateway-acme": .only([acme, zeta]),
            "switchboard-gateway": .every,
        ])
        #expect(users.ruleDescription == "gateway-acme:acme,gateway-acme:zeta,switchboard-gateway:*")
    }

    @Test func theUserIsEverythingBeforeTheLastColon() throws {
        #expect(try AgentCommandUsers(rules: ["ldap:gw:acme"]).desksByUser == ["ldap:gw": .only([acme])])
    }

    @Test(arguments: [
        (["gateway"], "rule \"gateway\" is not of the form user:desk (or user:* for every desk)"),
        ([":acme"], "rule \":acme\" names no broker user before the colon"),
        (["gw:"], "rule \"gw:\": \"\" is neither * nor a desk id ([A-Za-z0-9_-]{1,64})"),
        (["gw:ac me"], "rule \"gw:ac me\": \"ac me\" is neither * nor a desk id ([A-Za-z0-9_-]{1,64})"),
        ([], "no rule given: at least one user:desk is needed"),
    ])
    func aMalformedRuleIsRefusedWithWhatIsWrong(rules: [String], message: String) {
        do throws(AgentCommandUsers.RuleError) {
            _ = try AgentCommandUsers(rules: rules)
            Issue.record("\(rules) was accepted")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func refusals() throws {
        let users = try AgentCommandUsers(rules: ["gateway-acme:acme", "switchboard-gateway:*"])
        #expect(users.refusal(user: "switchboard-gateway", desks: [zeta]) == nil)
        #expect(users.refusal(user: "switchboard-gateway", desks: []) == nil)
        #expect(users.refusal(user: "gateway-acme", desks: [acme, acme]) == nil)
        #expect(
            users.refusal(user: "gateway-acme", desks: [acme, zeta])
                == "forbidden: broker user \"gateway-acme\" may not send agent commands for desk \"zeta\"")
        #expect(
            users.refusal(user: "gateway-acme", desks: [])
                == "forbidden: broker user \"gateway-acme\" may not send agent commands without a readable desk")
        #expect(
            users.refusal(user: "switchboard-ops", desks: [acme])
                == "forbidden: broker user \"switchboard-ops\" may not send agent commands for desk \"acme\"")
        #expect(
            users.refusal(user: nil, desks: [acme])
                == "forbidden: an agent command must carry the broker-validated user_id property")
    }
}
