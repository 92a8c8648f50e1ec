package proxy

// LargeObjectFunctions exposes the FunctionCall allow-list to the tests
// that check it against the server.
var LargeObjectFunctions = largeObjectFunctions

// SetAfterForward makes srv call f after each client message it forwards
// upstream (see Server.afterForward).
func SetAfterForward(srv *Server, f func(typ byte)) { srv.afterForward.Store(&f) }
