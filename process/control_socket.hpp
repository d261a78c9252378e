// A blocking request/answer client for the unix control sockets of the processes syncstorm starts
// (the lab's supervisor and fault proxy: one JSON line each way; HAProxy's stats socket: a command
// line, the answer until the peer closes). Beside the runner because it is how syncstorm talks
// to what the runner started.
//
// Threading: every function may be called from any thread; each call opens its own connection.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

namespace syncstorm::process {

// Sends `request` over the unix socket and returns what comes back: everything until the peer
// closes, or (until_newline) the first line. Throws std::runtime_error naming `what` and the
// path on failure or when `timeout` passes.
std::string unix_exchange(const std::string& socket_path, const std::string& request, std::chrono::milliseconds timeout,
                          const std::string& what, bool until_newline);

// One JSON request line on a unix stream socket, one JSON answer line back (the control protocol
// of the supervisor and the fault proxy). Throws std::runtime_error naming the socket on connect
// failure, timeout, or an answer that is not JSON.
nlohmann::json unix_json_request(const std::string& socket_path, const nlohmann::json& request,
                                 std::chrono::milliseconds timeout);

}  // namespace syncstorm::process
