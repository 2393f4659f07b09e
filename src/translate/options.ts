import type { DataplaneValidators } from "../dataplane/capabilities.ts";

export const DEFAULT_CONTROLLER_NAME = "gatehouse.dev/gateway-controller";

export interface TranslateOptions {
  /** The GatewayClass controllerName Gatehouse answers to. */
  controllerName: string;
  /** RFC 3339 time written as lastTransitionTime of conditions (the translator reads no clock). */
  now: string;
  /**
   * What the data plane can express, asked while each rule is built: a value it cannot express
   * becomes the owning rule's condition and never reaches the IR.
   */
  validators: DataplaneValidators;
  /**
   * Who makes Gateways reachable: "host" (default: this process's HAProxy; parametersRef is refused)
   * or "kubernetes" (per-Gateway data-plane pods; parametersRef may name a GatehouseProxy, and an
   * IPAddress without a value asks for one to be assigned).
   */
  infrastructure?: Infrastructure;
}

export type Infrastructure = "host" | "kubernetes";
