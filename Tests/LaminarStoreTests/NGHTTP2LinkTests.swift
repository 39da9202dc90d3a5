import CNGHTTP2
import Testing

/// The system library target resolves through pkg-config and links.
@Test func nghttp2LinksAndReportsVersion152OrLater() {
    let info = nghttp2_version(0)!.pointee
    let version = String(cString: info.version_str)
    #expect(info.version_num >= 0x013400, "nghttp2 \(version) is older than 1.52")
}
