import Testing
@testable import LPC
