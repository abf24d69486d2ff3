/** Options of {@link startAcsIdentity}. */
export interface AcsIdentityOptions {
  /** Also serve plain HTTP on a free loopback port (`httpEndpoint`). Default false. */
  http?: boolean;
  /** Use the well-known development key (`--dev`). Default false. */
  dev?: boolean;
  /** Serve unknown api-versions as the newest one (`--skip-api-version-check`). Default false. */
  skipApiVersionCheck?: boolean;
  /** More `acs-identity serve` flags. */
  args?: string[];
  /** Added to the service's environment. */
  env?: Record<string, string>;
  /** Another build of the binary (default: this package's, or `$ACS_IDENTITY_BINARY`). */
  binary?: string;
  /**
   * Make this process trust the service's development CA for TLS connections that do not
   * choose their own CAs, until `stop()`. Default true.
   */
  trustCa?: boolean;
  /** How long to wait for the ready line, in milliseconds. Default 30000. */
  timeoutMs?: number;
}

/** A running in-memory service. */
export interface AcsIdentity {
  /** `endpoint=https://127.0.0.1:PORT/;accesskey=…` for the official SDKs. */
  readonly connectionString: string;
  /** The HTTPS endpoint, e.g. `https://127.0.0.1:40123/`. */
  readonly endpoint: string;
  /** The plain HTTP endpoint with `http: true`, else null. */
  readonly httpEndpoint: string | null;
  /** The development CA (PEM file), or null with your own certificate. */
  readonly caFile: string | null;
  /** The service's process id. */
  readonly pid: number;
  /** Stops the service (SIGTERM) and resolves with its exit code once it has exited. */
  stop(): Promise<number | null>;
}

/** The error of a service that cannot start or runs on an unsupported platform. */
export class AcsIdentityError extends Error {}

/** Path of this package's `acs-identity` binary. */
export function binaryPath(): string;

/**
 * Starts `acs-identity serve --in-memory --output json` on a free loopback port and
 * resolves once it is ready.
 */
export function startAcsIdentity(options?: AcsIdentityOptions): Promise<AcsIdentity>;
