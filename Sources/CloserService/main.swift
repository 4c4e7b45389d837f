import Foundation
import SwitchboardRuntime
import SwitchboardService

exit(await ServiceLauncher.run(CloserAdapter.self, defaults: .closer))
