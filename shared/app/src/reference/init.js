// Renders openapi.yaml (served beside this page, its first server the URL the page was reached at).
// validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
