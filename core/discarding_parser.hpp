// An HTTP/1.1 parser that keeps nothing: Beast's basic_parser with every callback a no-op and
// every body byte taken and dropped. What it is for is where a message ends (the fault proxy's
// request framing, proxy/fault_proxy.cpp) or only its status line (the HTTP client's
// status_sink, loadgen/http_client.cpp: override on_response_impl). basic_parser cannot be
// reset: construct one per message. Beast in a header: include it from .cpp files only.
#pragma once

#include <boost/beast/http/basic_parser.hpp>

#include <cstdint>

namespace syncstorm {

template <bool IsRequest>
class discarding_parser : public boost::beast::http::basic_parser<IsRequest> {
 protected:
  using error_code = boost::system::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code&) override {}
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view, string_view, error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override { return body.size(); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override { return body.size(); }
  void on_finish_impl(error_code&) override {}
};

}  // namespace syncstorm
