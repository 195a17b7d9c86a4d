// Offline reloads: the files `slfm deploy web` built (files.json) are cached when the page is first opened and
// served from the cache afterwards. Any other request goes to the network untouched.
const PREFIX = 'slfm-web-';

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const { build, files } = await (await fetch('files.json', { cache: 'no-store' })).json();
    await (await caches.open(PREFIX + build)).addAll(files);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const { build } = await (await fetch('files.json', { cache: 'no-store' })).json().catch(() => ({}));
    if (build) for (const k of await caches.keys()) if (k.startsWith(PREFIX) && k !== PREFIX + build) await caches.delete(k);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET') return;
  event.respondWith(caches.match(event.request, { ignoreSearch: true }).then((hit) => hit ?? fetch(event.request)));
});
