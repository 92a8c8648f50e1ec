package proxy

// LargeObjectFunctions exposes the FunctionCall allow-list to the tests
// that check it against the server.
var LargeObjectFunctions = largeObjectFunctions
