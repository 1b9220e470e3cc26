/* Gatehouse hosted pages: copy buttons, and passkeys (WebAuthn) where the
   browser has them. Every page works without this script; it adds the
   copy buttons beside a key or codes shown once, the passkey buttons, the
   browser's passkey autofill on the sign-in page, and adding a passkey on
   the account page. It talks only to this site's /ui endpoints, with the
   page's form token in X-CSRF-Token; the session stays in HttpOnly cookies
   it cannot read. */
"use strict";
// Copy buttons: the text of the element `data-copy` names, to the
// clipboard; the status line after the button says how it went.
document.querySelectorAll("button.copy[data-copy]").forEach((button) => {
  const source = document.getElementById(button.dataset.copy);
  const status = button.nextElementSibling;
  if (!source || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const text = source.innerText.trim();
    navigator.clipboard.writeText(text).then(
      () => { if (status) status.textContent = "Copied."; },
      () => { if (status) status.textContent = "Copying did not work: select the text and copy it."; },
    );
  });
});

(() => {
  const PKC = window.PublicKeyCredential;
  if (!PKC || !navigator.credentials) return;

  // WebAuthn's JSON forms carry binary fields as base64url.
  const fromB64u = (s) => {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  };
  const toB64u = (buf) => {
    let bin = "";
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64u(c.id) }));

  const creationOptions = (o) => {
    if (PKC.parseCreationOptionsFromJSON) return PKC.parseCreationOptionsFromJSON(o);
    return {
      ...o,
      challenge: fromB64u(o.challenge),
      user: { ...o.user, id: fromB64u(o.user.id) },
      excludeCredentials: withIds(o.excludeCredentials),
    };
  };
  const requestOptions = (o) => {
    if (PKC.parseRequestOptionsFromJSON) return PKC.parseRequestOptionsFromJSON(o);
    return { ...o, challenge: fromB64u(o.challenge), allowCredentials: withIds(o.allowCredentials) };
  };
  const credentialJSON = (c) => {
    if (typeof c.toJSON === "function") return c.toJSON();
    const r = c.response;
    const response = { clientDataJSON: toB64u(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64u(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64u(r.authenticatorData);
      response.signature = toB64u(r.signature);
      if (r.userHandle) response.userHandle = toB64u(r.userHandle);
    }
    return {
      id: c.id,
      rawId: toB64u(c.rawId),
      type: c.type,
      response,
      clientExtensionResults: c.getClientExtensionResults(),
      authenticatorAttachment: c.authenticatorAttachment || undefined,
    };
  };

  /** POSTs to one of the pages' endpoints; `{status, body}`. */
  const call = async (path, csrf, body) => {
    const res = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        accept: "application/json",
        "content-type": "application/json",
        "x-csrf-token": csrf,
      },
      body: JSON.stringify(body || {}),
    });
    // Sent to sign in: the session has ended meanwhile.
    if (res.redirected) {
      window.location.assign(res.url);
      return new Promise(() => {});
    }
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    return { status: res.status, body: data };
  };

  /** The sentence for a refusal, from the server's problem document. */
  const refusal = (r) =>
    (r.body && r.body.detail) || "That did not work. Reload the page and try again.";

  /** The sentence for an error the browser raised; null when it was ours. */
  const browserError = (e) => {
    if (e && e.name === "AbortError") return null;
    if (e && e.name === "NotAllowedError")
      return "The passkey request was cancelled or timed out. Try again when you are ready.";
    if (e && e.name === "InvalidStateError")
      return "This device already holds a passkey for your account.";
    return "Your browser could not use a passkey here.";
  };

  /** Shows `text` in `el` (hides it when empty); moves focus to it only
      when the person acted, never under their typing. */
  const say = (el, text, focus = true) => {
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
    if (text && focus) el.focus();
  };

  class Refused extends Error {}

  /** Begin → the browser → finish, for a sign-in or a re-authentication. */
  const useAssertion = async (box, begin, finish, extra, mediation, signal) => {
    const csrf = box.dataset.csrf;
    const started = await call(begin, csrf, extra.mfa_token ? { mfa_token: extra.mfa_token } : {});
    if (started.status !== 200) throw new Refused(refusal(started));
    const request = { publicKey: requestOptions(started.body.options.publicKey) };
    if (mediation) request.mediation = mediation;
    if (signal) request.signal = signal;
    const credential = await navigator.credentials.get(request);
    if (!credential) throw new Refused("No passkey was chosen.");
    const done = await call(finish, csrf, {
      ceremony: started.body.ceremony,
      credential: credentialJSON(credential),
      ...extra,
    });
    if (done.status >= 300) throw new Refused(refusal(done));
    return done;
  };

  const report = (el, focus = true) => (e) => {
    const text = e instanceof Refused ? e.message : browserError(e);
    if (text) say(el, text, focus);
  };

  // Sign-in page and the second step: a button, and on the sign-in page
  // the browser's own passkey autofill (conditional mediation).
  const signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    const button = signIn.querySelector("button");
    const error = signIn.querySelector(".passkey-error");
    const extra = { return_to: signIn.dataset.returnTo || "" };
    if (signIn.dataset.mfaToken) extra.mfa_token = signIn.dataset.mfaToken;
    const begin = signIn.dataset.begin;
    const finish = signIn.dataset.finish;
    // The autofill request, while one waits: a browser runs one request
    // at a time, so the button ends it (and waits for it) first.
    let autofill = null;
    let autofillSettled = Promise.resolve();
    const go = (done) => window.location.assign(done.body.location);
    signIn.hidden = false;
    button.addEventListener("click", () => {
      if (autofill) autofill.abort();
      autofill = null;
      say(error, "");
      button.disabled = true;
      autofillSettled
        .then(() => useAssertion(signIn, begin, finish, extra))
        .then(go, report(error))
        .finally(() => {
          button.disabled = false;
        });
    });
    if (signIn.dataset.conditional && PKC.isConditionalMediationAvailable) {
      PKC.isConditionalMediationAvailable().then((available) => {
        if (!available || button.disabled) return;
        autofill = new AbortController();
        // Autofill speaks only when a chosen passkey was refused: the
        // browser's own errors here (no passkey, cancelled) are not news.
        autofillSettled = useAssertion(signIn, begin, finish, extra, "conditional", autofill.signal)
          .then(go, (e) => {
            if (e instanceof Refused) report(error, false)(e);
          });
      }, () => {});
    }
  }

  // Account page: re-authentication, then adding a passkey.
  const reauth = document.getElementById("reauth");
  const reauthForm = document.getElementById("reauth-form");
  const reauthError = reauth && reauth.querySelector(".passkey-error");
  let onReauthenticated = null;

  /** Shows the re-authentication form; resolves once it succeeded. */
  const askReauth = () =>
    new Promise((resolve) => {
      onReauthenticated = resolve;
      reauth.hidden = false;
      const first = reauth.querySelector("input:not([type=hidden])");
      if (first) first.focus();
      else reauth.focus();
    });
  const reauthenticated = () => {
    reauth.hidden = true;
    say(reauthError, "");
    const then = onReauthenticated;
    onReauthenticated = null;
    if (then) then();
    else window.location.assign((reauth.dataset.next || "/ui/account") + "?notice=reauthenticated");
  };

  if (reauthForm) {
    reauthForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = new URLSearchParams(new FormData(reauthForm));
      fetch(reauthForm.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { accept: "application/json" },
        body,
      })
        .then(async (res) => {
          if (res.redirected) {
            window.location.assign(res.url);
            return;
          }
          if (res.status === 204) {
            reauthForm.reset();
            reauthenticated();
            return;
          }
          let data = null;
          try {
            data = await res.json();
          } catch (_) {
            data = null;
          }
          say(reauthError, refusal({ body: data }));
        })
        .catch(() => say(reauthError, "That did not work. Reload the page and try again."));
    });
    const withPasskey = document.getElementById("reauth-passkey");
    if (withPasskey) {
      withPasskey.hidden = false;
      withPasskey.addEventListener("click", () => {
        say(reauthError, "");
        useAssertion(reauth, "/ui/account/reauth/passkey/begin", "/ui/account/reauth/passkey/finish", {})
          .then(reauthenticated, report(reauthError));
      });
    }
  }

  const add = document.getElementById("passkey-add");
  if (add) {
    const button = add.querySelector("button");
    const name = add.querySelector("input");
    const error = add.querySelector(".passkey-error");
    const csrf = add.dataset.csrf;
    const unsupported = document.getElementById("passkey-unsupported");
    if (unsupported) unsupported.hidden = true;
    add.hidden = false;

    const register = async () => {
      let started = await call("/ui/account/passkeys/begin", csrf);
      if (started.status === 401 && started.body && started.body.code === "reauthentication_required") {
        say(error, "Adding a passkey needs a recent sign-in: confirm it is you below.");
        await askReauth();
        say(error, "");
        started = await call("/ui/account/passkeys/begin", csrf);
      }
      if (started.status !== 200) throw new Refused(refusal(started));
      const credential = await navigator.credentials.create({
        publicKey: creationOptions(started.body.options.publicKey),
      });
      const done = await call("/ui/account/passkeys/finish", csrf, {
        ceremony: started.body.ceremony,
        name: name.value.trim(),
        credential: credentialJSON(credential),
      });
      if (done.status >= 300) throw new Refused(refusal(done));
      window.location.assign(done.body.location);
    };

    button.addEventListener("click", () => {
      say(error, "");
      button.disabled = true;
      register()
        .catch(report(error))
        .finally(() => {
          button.disabled = false;
        });
    });
  }
})();
