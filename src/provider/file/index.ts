export { FileProvider, type FileProviderOptions } from "./provider.ts";
export {
  nodeWatch,
  type WatchEvent,
  type WatchEventType,
  type WatchFactory,
  type WatchHandle,
  type WatchRequest,
} from "./watch.ts";
