// Start Swagger UI on the page's OpenAPI document. A file of its own, not an inline
// script, so the page's Content-Security-Policy allows scripts from 'self' only.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // no badge fetched from a third-party validator
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
