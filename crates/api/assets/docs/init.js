// Starts the interactive page on this server's own OpenAPI document. Kept
// out of the HTML so the page runs under a CSP without 'unsafe-inline'.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No calls to the public validator: the page talks only to this server.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
