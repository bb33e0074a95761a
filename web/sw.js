// Offline: after one visit the page, its reader, the model and the runtime come from this
// cache. The page's own files are served from the cache at once and refreshed behind it
// (the next visit gets the update); the runtime's folder carries its version in its name,
// so it is never fetched twice. Requests outside the page's folder (the API) pass through.
const CACHE = "hdr-jax-page-v1";
const PAGE = ["./", "index.html", "app.js", "history.js", "style.css", "config.js",
              "manifest.webmanifest", "icon.svg", "reader/reader.js", "reader/preprocess.js",
              "reader/frames.js", "reader/ndimage.js", "model/model.json", "model/model.onnx"];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a page deployed without the on-device model still works offline as a page.
    await Promise.allSettled(PAGE.map((path) => cache.add(path)));
    try {
      const facts = await (await fetch("model/model.json")).json();
      await Promise.allSettled(facts.runtime_files.map((path) => cache.add(path)));
    } catch (err) { /* No on-device model: reading needs the API. */ }
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET" || !request.url.startsWith(self.registration.scope)) return;
  const versioned = new URL(request.url).pathname.includes("/vendor/");
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(request, { ignoreSearch: request.mode === "navigate" });
    const fresh = versioned && cached ? null : fetch(request).then((response) => {
      if (response.ok) cache.put(request, response.clone());
      return response;
    });
    if (cached) {
      if (fresh) event.waitUntil(fresh.catch(() => {}));  // Offline: the cached copy answers.
      return cached;
    }
    return fresh;
  })());
});
