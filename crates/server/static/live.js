// Live updates for amends' pages (the status page and a customer's own page): the server
// sends an event on /status/events whenever what the status shows changes; the page then
// fetches itself again and swaps its <main> in place. Without JavaScript, or if the
// events stop, a reload does the same. No other script runs on these pages.
(() => {
  if (!('EventSource' in window) || !('fetch' in window)) return;
  // Every open page hears of a change at the same moment. Each waits a random moment of
  // up to SPREAD_MS before fetching itself, so the thousands of pages open during an
  // outage reach the server spread over those seconds, not in one burst.
  const SPREAD_MS = 2000;
  let seen = null;
  let planned = false; // a refresh is waiting for its moment
  let busy = false; // a refresh is under way
  let again = false; // the status changed again while it was
  function plan() {
    if (busy) {
      again = true;
      return;
    }
    if (planned) return;
    planned = true;
    setTimeout(() => {
      planned = false;
      refresh();
    }, Math.random() * SPREAD_MS);
  }
  async function refresh() {
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
      if (again) {
        again = false;
        plan();
      }
    }
  }
  const events = new EventSource('/status/events');
  events.addEventListener('status', (event) => {
    if (seen !== null && event.data !== seen) plan();
    seen = event.data;
  });
})();
