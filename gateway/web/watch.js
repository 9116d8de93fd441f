// Following a job live: an EventSource on /v1/jobs/{id}/watch, authorised by the watch
// cookie. Each event's id is the update's number, so a dropped connection resumes
// where it stopped (the browser sends Last-Event-ID by itself; we pass afterSeq when we
// reopen), and numbers already seen are skipped, so nothing is shown twice.

import { ApiError, setWatchCookie } from "/assets/api.js";

const MAX_REOPENS = 5;

export class JobWatch {
  /**
   * `onUpdate(update)` gets each JobUpdate (`state`, `progress`, `outputDelta` or
   * `finished`, the last); `onFailure(error)` when the watch cannot go on.
   */
  constructor(jobId, { onUpdate, onFailure }) {
    this.jobId = jobId;
    this.onUpdate = onUpdate;
    this.onFailure = onFailure;
    this.lastSeq = 0;
    this.reopens = 0;
    this.source = null;
    this.stopped = false;
  }

  async start() {
    await setWatchCookie();
    this.open();
  }

  stop() {
    this.stopped = true;
    this.source?.close();
    this.source = null;
  }

  open() {
    if (this.stopped) return;
    const after = this.lastSeq ? `?afterSeq=${this.lastSeq}` : "";
    const source = new EventSource(`/v1/jobs/${encodeURIComponent(this.jobId)}/watch${after}`);
    this.source = source;
    source.addEventListener("update", (event) => this.received(event));
    source.addEventListener("error", (event) => this.failed(source, event));
  }

  received(event) {
    const update = JSON.parse(event.data);
    const seq = Number(update.seq ?? 0);
    if (seq && seq <= this.lastSeq) return;
    this.lastSeq = seq || this.lastSeq;
    this.reopens = 0;
    if (update.finished) this.stop();
    this.onUpdate(update);
  }

  // Two kinds of "error": the gateway's `error` event, with the API error as data, which
  // ends the stream; and the browser's, without data, when the connection drops. The
  // browser retries a dropped connection itself, but not one refused (a 401 once the
  // cookie's token expired): that one we reopen with a fresh cookie.
  failed(source, event) {
    if (this.stopped || source !== this.source) return;
    if (typeof event.data === "string" && event.data) {
      source.close();
      let error;
      try {
        error = new ApiError(500, JSON.parse(event.data));
      } catch {
        error = new ApiError(500, null);
      }
      if (error.status === "UNAVAILABLE") this.reopen();
      else this.fail(error);
      return;
    }
    if (source.readyState === EventSource.CLOSED) this.reopen();
  }

  async reopen() {
    this.source?.close();
    this.reopens += 1;
    if (this.reopens > MAX_REOPENS) {
      this.fail(new Error("Lost the connection to the job's progress. Reload the job to see how it ended."));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500 * this.reopens));
    if (this.stopped) return;
    try {
      await setWatchCookie();
    } catch (error) {
      if (error instanceof ApiError && error.httpStatus !== 0) {
        this.fail(error);
        return;
      }
    }
    this.open();
  }

  fail(error) {
    this.stop();
    this.onFailure(error);
  }
}
