"""Passkeys in a real browser: Chromium's virtual authenticator (CTAP2,
resident keys, user verification) registers a passkey through the JSON
routes with the browser's own helpers (parseCreationOptionsFromJSON,
toJSON), signs in with it username-less, and the same assertion replayed is
refused. Run by .ci/passkey-browser with BASE (an http://localhost origin in
WEBAUTHN_ORIGINS)."""

import json
import os
import sys
import tempfile
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions

BASE = os.environ["BASE"]
# Direct calls go to the address itself; the browser uses the origin's name.
API = BASE.replace("//localhost:", "//127.0.0.1:")
PASSWORD = "Br0wser-Passw0rd!"


def post(path, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    req = urllib.request.Request(API + path, data=json.dumps(body).encode(),
                                 method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


CEREMONIES = """
const [token, done] = [arguments[0], arguments[arguments.length - 1]];
const post = (path, body, t) => fetch(path, {method: "POST",
  headers: {"content-type": "application/json", ...(t && {authorization: `Bearer ${t}`})},
  body: JSON.stringify(body ?? {})})
  .then(async r => ({status: r.status, body: await r.json().catch(() => null)}));
(async () => {
  const reg = await post("/api/v1/auth/passkeys/register/begin", null, token);
  const made = await navigator.credentials.create({publicKey:
    PublicKeyCredential.parseCreationOptionsFromJSON(reg.body.options.publicKey)});
  const added = await post("/api/v1/auth/passkeys/register/finish",
    {ceremony: reg.body.ceremony, name: "Chromium", credential: made.toJSON()}, token);
  const go = await post("/api/v1/auth/passkeys/login/begin");
  const said = await navigator.credentials.get({publicKey:
    PublicKeyCredential.parseRequestOptionsFromJSON(go.body.options.publicKey)});
  const signed = await post("/api/v1/auth/passkeys/login/finish",
    {ceremony: go.body.ceremony, credential: said.toJSON()});
  const replayed = await post("/api/v1/auth/passkeys/login/finish",
    {ceremony: go.body.ceremony, credential: said.toJSON()});
  done({added: added.status, transports: added.body && added.body.transports, signed: signed.status,
        token: !!(signed.body && signed.body.access_token), replayed: replayed.status});
})().catch(e => done({error: String(e)}));
"""


def main():
    status, _ = post("/api/v1/auth/register",
                     {"username": "browser", "email": "browser@example.com", "password": PASSWORD})
    assert status == 201, status
    status, login = post("/api/v1/auth/login",
                         {"email": "browser@example.com", "password": PASSWORD})
    assert status == 200, login
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + tempfile.mkdtemp(),
                # localhost is the relying party; the service listens on 127.0.0.1.
                "--host-resolver-rules=MAP localhost 127.0.0.1"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        authenticator = VirtualAuthenticatorOptions()
        authenticator.protocol = VirtualAuthenticatorOptions.Protocol.CTAP2
        authenticator.transport = VirtualAuthenticatorOptions.Transport.INTERNAL
        authenticator.has_resident_key = True
        authenticator.has_user_verification = True
        authenticator.is_user_verified = True
        driver.add_virtual_authenticator(authenticator)
        # The service's own responses forbid scripts from connecting (its
        # CSP): this page of its origin is only a place for the ceremonies.
        driver.execute_cdp_cmd("Page.setBypassCSP", {"enabled": True})
        driver.get(BASE + "/health")
        driver.set_script_timeout(60)
        result = driver.execute_async_script(CEREMONIES, login["access_token"])
    finally:
        driver.quit()
    print(json.dumps(result))
    expected = {"added": 201, "transports": ["internal"], "signed": 200, "token": True,
                "replayed": 401}
    if result != expected:
        print("passkey browser check: expected", json.dumps(expected), file=sys.stderr)
        sys.exit(1)
    print("passkey browser check: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
