"""Which HTTP proxy, if any, each request goes through.

Like requests and httpx, the client honours ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
``NO_PROXY`` (lower-case names win, as in curl and urllib) unless ``trust_env=False``; an
explicit ``proxy=`` replaces the ``*_PROXY`` variables. The environment is read once, when
the client is built. The choice is applied to every request of the client's session (API,
storage, downloads, raw links, and your own ``fc.session`` calls) by an aiohttp middleware.

https targets go through the proxy with ``CONNECT``: the proxy relays TLS bytes and never
sees a header. A plain-http target through a proxy is sent in clear *to the proxy*, so the
client refuses to send the API key that way unless ``allow_insecure_http=True``.
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.request
from dataclasses import dataclass

import aiohttp
from yarl import URL

from ._exceptions import ConfigurationError
from ._redact import redact_url

__all__ = ["ProxyRoute", "ProxySettings"]

#: Proxy schemes aiohttp can speak (no SOCKS without extra packages).
SUPPORTED_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class ProxyRoute:
    """A proxy URL without credentials, and the credentials it had, if any."""

    url: URL
    authorization: str | None
    """The ``Proxy-Authorization`` value (Basic) built from the URL's userinfo."""

    def __repr__(self) -> str:
        auth = ", with credentials" if self.authorization else ""
        return f"ProxyRoute({redact_url(self.url)}{auth})"


def _route(raw: str, source: str) -> ProxyRoute:
    text = raw.strip()
    if "://" not in text:  # curl's reading of HTTP_PROXY=host:3128
        text = "http://" + text
    try:
        url = URL(text)
    except ValueError:
        raise ConfigurationError(f"{source} is not a URL: {redact_url(text)}") from None
    if url.scheme not in SUPPORTED_SCHEMES or not url.host:
        raise ConfigurationError(
            f"{source}={redact_url(url)}: only http:// and https:// proxies are supported "
            "(pass trust_env=False to ignore the environment, or proxy=...)"
        )
    authorization = None
    if url.user is not None:  # yarl has percent-decoded them
        pair = f"{url.user}:{url.password or ''}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    bare = url.with_user(None).with_password(None).with_path("").with_query(None)
    return ProxyRoute(bare.with_fragment(None), authorization)


@dataclass(frozen=True)
class _Bypass:
    """One ``NO_PROXY`` entry: ``*``, a domain (suffix match), an IP or CIDR, ``host:port``."""

    host: str
    port: int | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None

    @classmethod
    def parse(cls, entry: str) -> _Bypass | None:
        entry = entry.strip().lower()
        if not entry:
            return None
        port: int | None = None
        host = entry
        if entry.startswith("["):  # [::1]:8080
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, number = entry.partition(":")
            if number.isdigit():
                host, port = name, int(number)
        host = host.lstrip("*").lstrip(".") if host != "*" else host
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            network = None
        return cls(host, port, network)

    def matches(self, host: str, port: int | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host == "*":
            return True
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        return host == self.host or host.endswith("." + self.host)


class ProxySettings:
    """The proxy choice of one client, fixed when the client is built."""

    def __init__(
        self,
        *,
        http: ProxyRoute | None = None,
        https: ProxyRoute | None = None,
        bypass: tuple[_Bypass, ...] = (),
        allow_clear_key: bool = False,
    ) -> None:
        self._routes = {"http": http, "https": https}
        self._bypass = bypass
        self._allow_clear_key = allow_clear_key

    @classmethod
    def resolve(
        cls,
        *,
        proxy: str | None,
        trust_env: bool,
        allow_clear_key: bool,
    ) -> ProxySettings:
        """Settings from ``proxy=`` and (when ``trust_env``) the environment."""
        # urllib's reader: lower-case names win, HTTP_PROXY is ignored under CGI (httpoxy),
        # empty values are dropped.
        env = urllib.request.getproxies_environment() if trust_env else {}
        bypass = tuple(
            b for b in (_Bypass.parse(e) for e in env.get("no", "").split(",")) if b is not None
        )
        if proxy is not None:
            if not isinstance(proxy, str) or not proxy.strip():
                raise ConfigurationError("proxy must be a non-empty proxy URL string")
            route = _route(proxy, "proxy")
            return cls(http=route, https=route, bypass=bypass, allow_clear_key=allow_clear_key)
        fallback = env.get("all")
        http = env.get("http") or fallback
        https = env.get("https") or fallback
        return cls(
            http=_route(http, "HTTP_PROXY") if http else None,
            https=_route(https, "HTTPS_PROXY") if https else None,
            bypass=bypass,
            allow_clear_key=allow_clear_key,
        )

    @property
    def enabled(self) -> bool:
        """Whether any request may go through a proxy."""
        return any(self._routes.values())

    def route(self, url: URL) -> ProxyRoute | None:
        """The proxy for ``url``, or None to connect directly."""
        chosen = self._routes.get(url.scheme)
        if chosen is None:
            return None
        host = (url.host or "").lower().strip("[]").rstrip(".")
        if any(b.matches(host, url.port) for b in self._bypass):
            return None
        return chosen

    def clear_key_risk(self, url: URL) -> ProxyRoute | None:
        """The proxy that would read an API key sent to ``url`` in clear, if any."""
        if url.scheme != "http" or self._allow_clear_key:
            return None
        return self.route(url)

    async def middleware(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        """aiohttp client middleware: route ``request`` (a per-call ``proxy=`` wins)."""
        if request.proxy is None:
            chosen = self.route(request.url)
            if chosen is not None:
                if "X-API-Key" in request.headers and self.clear_key_risk(request.url):
                    # The client refuses such an origin at construction; this guards
                    # requests made on ``fc.session`` directly.
                    raise ConfigurationError(
                        f"refusing to send the API key over plain http through the proxy "
                        f"{redact_url(chosen.url)}; use https or allow_insecure_http=True"
                    )
                # Credentials go on the CONNECT of an https target (aiohttp sends
                # proxy_headers there) and on the request itself for an http target
                # (proxy_headers are not sent then). aiohttp's BasicAuth is deprecated.
                extra = None
                if chosen.authorization is not None:
                    if request.is_ssl():
                        extra = {"Proxy-Authorization": chosen.authorization}
                    else:
                        request.headers["Proxy-Authorization"] = chosen.authorization
                request.update_proxy(chosen.url, None, extra)
        return await handler(request)

    def __repr__(self) -> str:
        routes = ", ".join(f"{k}={v!r}" for k, v in self._routes.items() if v is not None)
        return f"ProxySettings({routes or 'direct'}, no_proxy={len(self._bypass)} entries)"
