import Foundation
import SwitchboardRuntime
import SwitchboardService

exit(await ServiceLauncher.run(NotifierAdapter.self, defaults: .notifier))
