// Namespace aliases shared by every networked file, and nothing else. It declares the
// namespaces without including Asio or Beast, so including it costs nothing: each .cpp
// includes the Asio/Beast headers it actually uses.
#pragma once

namespace boost::asio {}
namespace boost::beast::http {}
namespace boost::beast::websocket {}

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
