// The side-effecting edges of the HAProxy data plane: the process manager and the runtime API.
export {
  findHAProxy,
  HAProxyNotFoundError,
  HAProxyNotRunningError,
  HAProxyProcess,
  HAProxyProcessError,
  HAProxyReloadError,
  HAProxyStartError,
  parseShowProc,
  resolveRestartPolicy,
  restartDelay,
  validateConfig,
} from "./manager.ts";
export type {
  HAProxyProcessEvent,
  HAProxyProcessOptions,
  ProcessInfo,
  ProcessList,
  ProcessLogger,
  ProcessState,
  ReloadResult,
  RestartPolicy,
  StopOptions,
  ValidationResult,
} from "./manager.ts";
export {
  cliArg,
  cliCommand,
  DEFAULT_MAX_REQUEST_BYTES,
  RuntimeApiError,
  RuntimeCommandError,
  RuntimeConnectionError,
  RuntimeRequestError,
  RuntimeTimeoutError,
  UnixSocketRuntimeApi,
  workerRuntimeApi,
} from "../runtime/socket.ts";
export type { RuntimeApi, RuntimeRequest, UnixSocketRuntimeApiOptions } from "../runtime/socket.ts";
export * as runtimeCommands from "../runtime/commands.ts";
