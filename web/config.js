// Where the page finds the prediction API. Empty: the page's own origin (local use, or a
// function behind the same host). A deployed page sets the function's URL here, e.g.
//   apiUrl: "https://REGION-PROJECT.cloudfunctions.net/predict"
// A `?api=URL` link may point the page elsewhere only if URL's origin is the page's own or is
// listed in allowedApiOrigins: otherwise a crafted link could send people's photos to any
// server. timeoutSeconds: how long the page waits for an answer.
window.HDR_CONFIG = { apiUrl: "", allowedApiOrigins: [], timeoutSeconds: 30 };
