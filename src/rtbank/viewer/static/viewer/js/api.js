// Talking to the viewer endpoints. Every request carries the viewer-session token (one access-log row per
// session and kind of request; every request is still checked). Planes arrive as uint16 with a linear scale:
// value = offset + scale * raw, raw 0 = no data (see rtbank.dicom.imaging.encoding).

const RETRY_MS = 250;

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export class Api {
  constructor(base, token) {
    this.base = base.replace(/\/$/, "");
    this.token = token;
    this.planes = new Map(); // url -> Promise<Plane>, a small LRU
    this.maxPlanes = 160;
  }

  url(path, params) {
    const query = params ? "?" + new URLSearchParams(params).toString() : "";
    return `${this.base}/${path}${query}`;
  }

  // One retry after a short pause for server errors and dropped connections (a busy server, a database
  // lock): scrolling must not leave a hole for a transient failure. 4xx answers are final.
  async fetch(path, params, signal) {
    const url = this.url(path, params);
    const options = { headers: { "X-Viewer-Session": this.token }, credentials: "same-origin", signal };
    let response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      response = null;
    }
    if (!response || response.status >= 500) {
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      response = await fetch(url, options);
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (body && body.error) message = body.error;
      } catch (_) { /* not JSON */ }
      throw new ApiError(message, response.status);
    }
    return response;
  }

  async json(path, params) {
    const response = await this.fetch(path, params);
    return { status: response.status, body: await response.json() };
  }

  // A plane (image or dose), cached by URL; concurrent callers share one request.
  plane(path) {
    const key = path;
    const hit = this.planes.get(key);
    if (hit) {
      this.planes.delete(key);
      this.planes.set(key, hit);
      return hit;
    }
    const promise = this.fetch(path).then(readPlane);
    promise.catch(() => this.planes.delete(key));
    this.planes.set(key, promise);
    while (this.planes.size > this.maxPlanes) this.planes.delete(this.planes.keys().next().value);
    return promise;
  }
}

async function readPlane(response) {
  const head = JSON.parse(response.headers.get("X-Rtbank-Plane"));
  const buffer = await response.arrayBuffer();
  const raw = new Uint16Array(buffer);
  return new Plane(head.rows, head.columns, head.scale, head.offset, head.row0, head.column0, raw);
}

export class Plane {
  constructor(rows, columns, scale, offset, row0, column0, raw) {
    Object.assign(this, { rows, columns, scale, offset, row0, column0, raw });
  }

  // Value at a pixel of the display plane (not of this part), or null where there is no data.
  valueAt(row, column) {
    const r = row - this.row0;
    const c = column - this.column0;
    if (r < 0 || c < 0 || r >= this.rows || c >= this.columns) return null;
    const raw = this.raw[r * this.columns + c];
    return raw === 0 ? null : this.offset + this.scale * raw;
  }

  // Robust display range from the data (0.5th to 99.5th percentile of pixels with data).
  percentiles(low = 0.005, high = 0.995) {
    const counts = new Uint32Array(65536);
    let n = 0;
    for (const raw of this.raw) {
      if (raw) { counts[raw] += 1; n += 1; }
    }
    if (!n) return [0, 1];
    const at = (fraction) => {
      let seen = 0;
      const target = fraction * n;
      for (let raw = 1; raw < 65536; raw += 1) {
        seen += counts[raw];
        if (seen >= target) return this.offset + this.scale * raw;
      }
      return this.offset + this.scale * 65535;
    };
    return [at(low), at(high)];
  }
}
