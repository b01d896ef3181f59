"""Microsoft Entra ID (the token endpoint), Azure's managed-identity endpoint and the Bot Framework's
signing keys, on loopback, reached the way a bot process reaches the real ones: by their public https
names, through the HTTPS proxy named in its environment (the managed-identity endpoint is plain
http on loopback, as App Service gives it in ``IDENTITY_ENDPOINT``).

The proxy tunnels every CONNECT to one TLS server whose certificate, issued by a throwaway CA that
only the bot process trusts (``REQUESTS_CA_BUNDLE`` for MSAL, ``SSL_CERT_FILE`` for httpx), names
``login.microsoftonline.com`` and ``login.botframework.com``. The token endpoint speaks OAuth 2.0
client credentials as Entra does, including its error shape (``invalid_client`` with an AADSTS
code); ``secret`` says which client secret it accepts now, so a test can fix a credential mid-run.
It also takes a client assertion (a federated credential) when the assertion is a token its
managed-identity endpoint issued for ``api://AzureADTokenExchange``. Public and sovereign hosts are
served alike (the answer names the host asked), so a test can see which cloud a bot talks to.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Host, Mount, Route

from scripts.bot_process import listening_socket

LOGIN_HOSTS = ("login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn")
BOT_KEY_HOSTS = ("login.botframework.com", "login.botframework.azure.us", "login.botframework.azure.cn")
GRAPH_HOSTS = ("graph.microsoft.com", "graph.microsoft.us")
HOSTS = (*LOGIN_HOSTS, *BOT_KEY_HOSTS, *GRAPH_HOSTS)
LOGIN = "https://login.microsoftonline.com"
BOT_SCOPE = "https://api.botframework.com/.default"
TOKEN_EXCHANGE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Who issues Teams' tokens, by the host that serves its keys.
_BOT_ISSUERS = {
    "login.botframework.com": "https://api.botframework.com",
    "login.botframework.azure.us": "https://api.botframework.us",
    "login.botframework.azure.cn": "https://api.botframework.azure.cn",
}
INVALID_SECRET = (
    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is "
    "the client secret value, not the client secret ID."
)


@dataclass
class TokenRequest:
    tenant: str
    form: dict[str, str]
    host: str = "login.microsoftonline.com"


@dataclass
class IdentityRequest:
    """One request to the managed-identity endpoint (App Service protocol, api-version 2019-08-01)."""

    resource: str
    client_id: str | None
    header_ok: bool


@dataclass
class StandInEntra:
    folder: Path
    secret: str | None = None
    """The client secret accepted now; None refuses every one (as for a deleted secret)."""
    token_requests: list[TokenRequest] = field(default_factory=list)
    tunnels: list[str] = field(default_factory=list)
    """The hosts the proxy was asked to CONNECT to, in order."""
    signing_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = "standin-teams-key"
    identity_requests: list[IdentityRequest] = field(default_factory=list)
    graph_routes: list[BaseRoute] = field(default_factory=list)
    """Microsoft Graph, served on its hosts by the same TLS server (see tests/standins/graph.py)."""
    graph_roles: list[str] = field(default_factory=list)
    """The Graph application permissions the bot's app has, admin-consented."""
    identity_header: str = field(default_factory=lambda: uuid.uuid4().hex)
    _identity_tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.ca_file, cert_file, key_file = _certificates(self.folder)
        graph = Mount("", routes=self.graph_routes)
        app = Starlette(
            routes=[
                *[Host(host, app=graph) for host in GRAPH_HOSTS],
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid, methods=["GET"]),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
                Route("/common/discovery/instance", self._instance_discovery, methods=["GET"]),
                Route("/v1/.well-known/openidconfiguration", self._bot_openid, methods=["GET"]),
                Route("/v1/.well-known/keys", self._keys, methods=["GET"]),
            ]
        )
        self._identity_sock = listening_socket()
        identity = Starlette(routes=[Route("/msi/token", self._identity_token, methods=["GET"])])
        self._identity = uvicorn.Server(
            uvicorn.Config(
                identity, log_config=None, lifespan="off", access_log=False, timeout_graceful_shutdown=2
            )
        )
        self._tls_sock = listening_socket()
        config = uvicorn.Config(
            app,
            log_config=None,
            lifespan="off",
            access_log=False,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            timeout_graceful_shutdown=2,
        )
        self._tls = uvicorn.Server(config)
        self._proxy_sock = listening_socket()
        self.proxy_url = f"http://127.0.0.1:{self._proxy_sock.getsockname()[1]}"
        self._tasks: list[asyncio.Task[Any]] = []
        self._proxy: asyncio.Server | None = None

    def environment(self, *, managed_identity: bool = False) -> dict[str, str]:
        """What a bot process needs to reach this Entra instead of Microsoft's; with
        ``managed_identity``, also what App Service sets for a process with a managed identity."""
        values = {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
            "SSL_CERT_FILE": str(self.ca_file),
        }
        if managed_identity:
            port = self._identity_sock.getsockname()[1]
            values["IDENTITY_ENDPOINT"] = f"http://127.0.0.1:{port}/msi/token"
            values["IDENTITY_HEADER"] = self.identity_header
        return values

    async def start(self) -> StandInEntra:
        self._tasks.append(asyncio.create_task(self._tls.serve(sockets=[self._tls_sock])))
        self._tasks.append(asyncio.create_task(self._identity.serve(sockets=[self._identity_sock])))
        self._proxy = await asyncio.start_server(self._tunnel, sock=self._proxy_sock)
        return self

    async def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
        self._tls.should_exit = True
        self._identity.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def activity_token(
        self, *, app_id: str, service_url: str, issuer: str = "https://api.botframework.com"
    ) -> str:
        """What Teams puts in the Authorization header of an activity sent to the bot."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": app_id,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            "serviceurl": service_url,
        }
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": self.kid})

    def issued_tokens_for(self, scope: str) -> int:
        return sum(1 for request in self.token_requests if request.form.get("scope") == scope)

    # The proxy ------------------------------------------------------------------------------------

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            host = target.rsplit(":", 1)[0]
            if method != "CONNECT" or host not in HOSTS:
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            self.tunnels.append(host)
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._tls_sock.getsockname()[1]
            )
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    # Entra ----------------------------------------------------------------------------------------

    async def _openid(self, request: Request) -> JSONResponse:
        tenant = request.path_params["tenant"]
        login = f"https://{request.url.hostname}"
        return JSONResponse(
            {
                "issuer": f"{login}/{tenant}/v2.0",
                "authorization_endpoint": f"{login}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{login}/{tenant}/oauth2/v2.0/token",
                "jwks_uri": f"{login}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    async def _instance_discovery(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"{LOGIN}/common/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {
                        "preferred_network": "login.microsoftonline.com",
                        "preferred_cache": "login.windows.net",
                        "aliases": ["login.microsoftonline.com", "login.windows.net"],
                    }
                ],
            }
        )

    async def _token(self, request: Request) -> JSONResponse:
        tenant = request.path_params["tenant"]
        form = dict(parse_qsl((await request.body()).decode()))
        self.token_requests.append(TokenRequest(tenant, form, request.url.hostname or ""))
        if not (self._secret_accepted(form) or self._assertion_accepted(form)):
            return JSONResponse(
                {
                    "error": "invalid_client",
                    "error_description": f"{INVALID_SECRET}\r\nTrace ID: {uuid.uuid4()}",
                    "error_codes": [7000215],
                    "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
                },
                status_code=401,
            )
        now = int(time.time())
        access = jwt.encode(
            {
                "aud": form.get("scope", "").removesuffix("/.default"),
                "iss": f"https://sts.windows.net/{tenant}/",
                "appid": form.get("client_id", ""),
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                # The application permissions an admin consented to (Graph reads them here).
                **({"roles": list(self.graph_roles)} if "graph." in form.get("scope", "") else {}),
            },
            self.signing_key,
            algorithm="RS256",
        )
        return JSONResponse(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access}
        )

    def _secret_accepted(self, form: dict[str, str]) -> bool:
        return self.secret is not None and form.get("client_secret") == self.secret

    def _assertion_accepted(self, form: dict[str, str]) -> bool:
        """A federated credential: the app trusts the managed identity whose token this is."""
        return (
            form.get("client_assertion_type") == JWT_BEARER
            and form.get("client_assertion", "") in self._identity_tokens
        )

    # The managed-identity endpoint ----------------------------------------------------------------

    async def _identity_token(self, request: Request) -> JSONResponse:
        resource = request.query_params.get("resource", "")
        client_id = request.query_params.get("client_id")
        header_ok = request.headers.get("x-identity-header") == self.identity_header
        self.identity_requests.append(IdentityRequest(resource, client_id, header_ok))
        if not header_ok or request.query_params.get("api-version") != "2019-08-01":
            return JSONResponse({"statusCode": 400, "message": "bad request"}, status_code=400)
        expires = int(time.time()) + 3600
        token = jwt.encode(
            {"aud": resource, "oid": client_id or "system", "iat": expires - 3600, "exp": expires},
            self.signing_key,
            algorithm="RS256",
        )
        if resource == TOKEN_EXCHANGE:
            self._identity_tokens.add(token)
        return JSONResponse(
            {
                "access_token": token,
                "expires_on": str(expires),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id or "system",
            }
        )

    # The Bot Framework's token-signing keys --------------------------------------------------------

    async def _bot_openid(self, request: Request) -> JSONResponse:
        host = request.url.hostname or "login.botframework.com"
        return JSONResponse(
            {
                "issuer": _BOT_ISSUERS.get(host, "https://api.botframework.com"),
                "jwks_uri": f"https://{host}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: Request) -> JSONResponse:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.signing_key.public_key(), as_dict=True)
        return JSONResponse(
            {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]}]}
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA, and a certificate it issues for Microsoft's login hosts."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stand-in test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTS[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host) for host in HOSTS]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "login.pem", folder / "login.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file
