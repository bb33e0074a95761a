// Where the page finds the prediction API. Empty: the page's own origin (local use, or a
// function behind the same host). A deployed page sets the function's URL here, e.g.
// window.HDR_CONFIG = { apiUrl: "https://REGION-PROJECT.cloudfunctions.net/predict" };
// A `?api=URL` query parameter overrides this.
window.HDR_CONFIG = { apiUrl: "" };
