// Shows the API's OpenAPI document with ReDoc: the script a Content-Security-Policy without
// inline script allows (web/api/openapi.py serves the page).
(function () {
  const element = document.getElementById("api-docs");
  Redoc.init(element.dataset.specUrl, { hideDownloadButton: false, expandResponses: "200,201,202" }, element);
})();
