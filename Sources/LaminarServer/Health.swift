import LaminarFormats
import LaminarHTTP

/// `GET /health`: `200 {"status":"ok"}` while the server takes writes; `503` with
/// `{"status":"storage_failed","detail":...}` once the store has failed (fail-stop: writes are
/// refused until a restart), or `{"status":"stopping"}` while it drains.
enum Health {
    static func response(draining: Bool, storageFailure: String?) -> HTTPResponse {
        var body: [UInt8] = []
        body.append(0x7B)
        JSONWriter.appendName("status", to: &body)
        if let storageFailure {
            JSONWriter.appendString("storage_failed", to: &body)
            body.append(0x2C)
            JSONWriter.appendName("detail", to: &body)
            JSONWriter.appendString(storageFailure, to: &body)
        } else {
            JSONWriter.appendString(draining ? "stopping" : "ok", to: &body)
        }
        body.append(contentsOf: [0x7D, 0x0A])
        let ok = storageFailure == nil && !draining
        return HTTPResponse(status: ok ? 200 : 503, headers: ["content-type": "application/json"], body: body)
    }
}
