// Live updates for amends' pages (the status page and a customer's own page): the server
// sends an event on /status/events whenever what the status shows changes; the page then
// fetches itself again and swaps its <main> in place. Without JavaScript, or if the
// events stop, a reload does the same. No other script runs on these pages.
(() => {
  if (!('EventSource' in window) || !('fetch' in window)) return;
  let seen = null;
  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(window.location.href, { headers: { Accept: 'text/html' }, cache: 'no-store' });
      if (!response.ok) return;
      const next = new DOMParser().parseFromString(await response.text(), 'text/html').querySelector('main');
      const main = document.querySelector('main');
      // A form being filled in is never swapped away under the reader's fingers.
      const typing = document.activeElement?.matches('input:not([type=submit]), select, textarea');
      if (next && main && !typing) main.replaceWith(next);
    } finally {
      busy = false;
    }
  }
  const events = new EventSource('/status/events');
  events.addEventListener('status', (event) => {
    if (seen !== null && event.data !== seen) refresh();
    seen = event.data;
  });
})();
