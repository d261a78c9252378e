// The one translation unit that compiles Asio, Asio SSL and Beast (separate compilation).
// Every other target defines BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION
// through syncstorm_options and links this library instead of instantiating them again.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
