/**
 * The server's SETTINGS as a client connection keeps them (RFC 9113 §6.5.2): its stream
 * limit, the window it gives each new stream, its largest frame, and the checks each value
 * must pass. `remoteSettings` names them as `node:http2` does, for the channel.
 *
 * @module
 */
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  MAX_WINDOW,
  Setting,
} from "../../proto/http2/frames.ts";

/** The server's settings as `node:http2`'s `remoteSettings` names those the client reads. */
export interface RemoteSettings {
  maxConcurrentStreams?: number;
  initialWindowSize?: number;
  maxFrameSize?: number;
}

/** Why the connection must end over a setting. */
export interface SettingFailure {
  code: number;
  reason: string;
}

/**
 * What the server has said in its SETTINGS frames.
 *
 * @example
 * ```ts ignore
 * const settings = new ServerSettings();
 * const failure = settings.take(Setting.MAX_CONCURRENT_STREAMS, 100);
 * ```
 */
export class ServerSettings {
  /** The settings, named as `node:http2` names them. */
  readonly remote: RemoteSettings = {};
  /** How many streams the server takes at once. */
  maxStreams = Infinity;
  /** What the server's SETTINGS_INITIAL_WINDOW_SIZE gives each new stream. */
  initialWindow: number = DEFAULT_WINDOW;
  /** The server's SETTINGS_MAX_FRAME_SIZE. */
  maxFrame: number = DEFAULT_MAX_FRAME_SIZE;

  /**
   * Takes one setting.
   *
   * @param setting The setting.
   * @param value Its value.
   * @returns How much the window of each open stream moves (for INITIAL_WINDOW_SIZE), or
   * why the connection must end.
   */
  take(
    setting: number,
    value: number,
  ): { windowDelta: number } | SettingFailure {
    switch (setting) {
      case Setting.ENABLE_PUSH:
        return value === 0
          ? { windowDelta: 0 }
          : { code: ErrorCode.PROTOCOL_ERROR, reason: "ENABLE_PUSH" };
      case Setting.MAX_CONCURRENT_STREAMS:
        this.maxStreams = value;
        this.remote.maxConcurrentStreams = value;
        return { windowDelta: 0 };
      case Setting.INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW) {
          return { code: ErrorCode.FLOW_CONTROL_ERROR, reason: "Window" };
        }
        const windowDelta = value - this.initialWindow;
        this.initialWindow = value;
        this.remote.initialWindowSize = value;
        return { windowDelta };
      }
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) {
          return { code: ErrorCode.PROTOCOL_ERROR, reason: "MAX_FRAME_SIZE" };
        }
        this.maxFrame = value;
        this.remote.maxFrameSize = value;
        return { windowDelta: 0 };
      default:
        // HEADER_TABLE_SIZE: the encoder never indexes. MAX_HEADER_LIST_SIZE: a gRPC
        // request's few fields are far below any server's.
        return { windowDelta: 0 };
    }
  }
}
