// Renders /openapi.yaml (served by the same stack, its first server this stack's URL).
// validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
