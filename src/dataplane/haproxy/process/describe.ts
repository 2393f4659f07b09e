// One line per HAProxy process event, for /status dataplane.events and the log.
import type { HAProxyProcessEvent } from "./manager.ts";

/** The event's line; undefined for events not worth recording. */
export function describeProcessEvent(event: HAProxyProcessEvent): string | undefined {
  switch (event.type) {
    case "started":
      return `HAProxy started (master pid ${event.pid})`;
    case "reloaded":
      return `HAProxy reloaded (workers ${event.workers.join(", ")})`;
    case "exited":
      return event.expected
        ? `HAProxy stopped`
        : `HAProxy exited unexpectedly (code ${event.code}, signal ${event.signal}); restarting`;
    case "restart-scheduled":
      return `HAProxy restart ${event.attempt} in ${event.delayMs} ms`;
    case "restarted":
      return `HAProxy restarted (master pid ${event.pid}, attempt ${event.attempt})`;
    case "restart-failed":
      return `HAProxy restart ${event.attempt} failed: ${event.error.message}`;
    case "gave-up":
      return `HAProxy could not be restarted after ${event.attempts} attempts`;
  }
}
