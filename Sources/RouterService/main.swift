import Foundation
import SwitchboardRuntime
import SwitchboardService

exit(await ServiceLauncher.run(RouterAdapter.self, defaults: .router))
