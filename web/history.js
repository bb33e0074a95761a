// The readings kept on this device (IndexedDB): what was read, when, where, and a thumbnail.
// Nothing here leaves the browser except through the CSV the person exports.
const DB = "hdr-jax", STORE = "readings", VERSION = 1;

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, VERSION);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transaction(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Keeps one reading: {time, file, mode, result, confidence, low_confidence, where, thumbnail}. */
export function add(reading) { return transaction("readwrite", (store) => store.add(reading)); }

/** Every reading kept, oldest first. */
export function all() { return transaction("readonly", (store) => store.getAll()); }

export function clear() { return transaction("readwrite", (store) => store.clear()); }

const COLUMNS = ["time", "file", "mode", "result", "confidence", "low_confidence", "where"];

/** The readings as CSV (RFC 4180 quoting; a cell a spreadsheet would run as a formula is
 * prefixed with an apostrophe, since file names come from whoever made the files). */
export function toCsv(readings) {
  const cell = (value) => {
    let text = value === undefined || value === null ? "" : String(value);
    if (/^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text)) text = "'" + text;
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const rows = readings.map((r) => COLUMNS.map((c) => cell(
    c === "confidence" && typeof r[c] === "number" ? r[c].toFixed(4) : r[c])).join(","));
  return [COLUMNS.join(","), ...rows].join("\r\n") + "\r\n";
}
