export const DEFAULT_CONTROLLER_NAME = "gatehouse.dev/gateway-controller";

export interface TranslateOptions {
  /** The GatewayClass controllerName Gatehouse answers to. */
  controllerName: string;
  /** RFC 3339 time written as lastTransitionTime of conditions (the translator reads no clock). */
  now: string;
}
