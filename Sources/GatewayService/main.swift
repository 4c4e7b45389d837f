import Foundation
import SwitchboardGateway

exit(await GatewayLauncher.run())
