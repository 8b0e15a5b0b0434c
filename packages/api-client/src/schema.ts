// Generated from the gateway's OpenAPI document by packages/api-client/scripts/generate.ts.
// Do not edit: change the gateway's document (services/gateway/src/http/openapi.ts) and regenerate.
// A test compares this file with what the running gateway serves.
export interface paths {
  '/instances/simple': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Create an instance from a base image (no build) */
    post: {
      parameters: {
        query?: never;
        header?: {
          'Idempotency-Key'?: string;
        };
        path?: never;
        cookie?: never;
      };
      requestBody: {
        content: {
          'application/json': {
            /**
             * @description The workspace volume's size (its PersistentVolumeClaim's request on Kubernetes); a devcontainer.json's hostRequirements.storage is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 2Gi
             */
            storage_size?: string;
            /**
             * @description The user's shared volume's size (made by the user's first instance)
             * @default 5Gi
             */
            shared_storage_size?: string;
            /**
             * @description Memory reserved for the instance; a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 512Mi
             */
            memory_request?: string;
            /**
             * @description The most memory the instance may use (at least memory_request); a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 2Gi
             */
            memory_limit?: string;
            /**
             * @description CPU reserved for the instance; a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 200m
             */
            cpu_request?: string;
            /**
             * @description The most CPU the instance may use (at least cpu_request); a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 1000m
             */
            cpu_limit?: string;
            user_id?: string;
            vscode_version?: string;
            /** @default ubuntu:22.04 */
            base_image?: string;
          };
        };
      };
      responses: {
        /** @description Accepted: the instance is queued */
        202: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Instance'];
          };
        };
        /** @description Bad input (malformed JSON/JSONC, invalid fields) */
        400: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description The token may not act for that user */
        403: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description A request with this Idempotency-Key is in progress */
        409: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description Upload or body too large */
        413: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description devcontainer.json is not supported or does not match the spec’s schema (`unsupported_devcontainer`: also hostRequirements above what this deployment gives an instance, or a GPU it requires), or a resource field is below its hostRequirements (`below_host_requirements`) */
        422: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description A per-user quota is reached */
        429: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances/devcontainer': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Create an instance from a devcontainer.json */
    post: {
      parameters: {
        query?: never;
        header?: {
          'Idempotency-Key'?: string;
        };
        path?: never;
        cookie?: never;
      };
      requestBody: {
        content: {
          'multipart/form-data': {
            /**
             * @description The workspace volume's size (its PersistentVolumeClaim's request on Kubernetes); a devcontainer.json's hostRequirements.storage is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 2Gi
             */
            storage_size?: string;
            /**
             * @description The user's shared volume's size (made by the user's first instance)
             * @default 5Gi
             */
            shared_storage_size?: string;
            /**
             * @description Memory reserved for the instance; a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 512Mi
             */
            memory_request?: string;
            /**
             * @description The most memory the instance may use (at least memory_request); a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 2Gi
             */
            memory_limit?: string;
            /**
             * @description CPU reserved for the instance; a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 200m
             */
            cpu_request?: string;
            /**
             * @description The most CPU the instance may use (at least cpu_request); a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 1000m
             */
            cpu_limit?: string;
            user_id?: string;
            vscode_version?: string;
            /**
             * Format: binary
             * @description devcontainer.json (JSONC)
             */
            devcontainer_json: string;
          };
        };
      };
      responses: {
        /** @description Accepted: the instance is queued */
        202: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Instance'];
          };
        };
        /** @description Bad input (malformed JSON/JSONC, invalid fields) */
        400: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description The token may not act for that user */
        403: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description A request with this Idempotency-Key is in progress */
        409: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description Upload or body too large */
        413: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description devcontainer.json is not supported or does not match the spec’s schema (`unsupported_devcontainer`: also hostRequirements above what this deployment gives an instance, or a GPU it requires), or a resource field is below its hostRequirements (`below_host_requirements`) */
        422: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description A per-user quota is reached */
        429: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances/workspace': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Create an instance from a workspace folder (tar.gz with .devcontainer/) */
    post: {
      parameters: {
        query?: never;
        header?: {
          'Idempotency-Key'?: string;
        };
        path?: never;
        cookie?: never;
      };
      requestBody: {
        content: {
          'multipart/form-data': {
            /**
             * @description The workspace volume's size (its PersistentVolumeClaim's request on Kubernetes); a devcontainer.json's hostRequirements.storage is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 2Gi
             */
            storage_size?: string;
            /**
             * @description The user's shared volume's size (made by the user's first instance)
             * @default 5Gi
             */
            shared_storage_size?: string;
            /**
             * @description Memory reserved for the instance; a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 512Mi
             */
            memory_request?: string;
            /**
             * @description The most memory the instance may use (at least memory_request); a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 2Gi
             */
            memory_limit?: string;
            /**
             * @description CPU reserved for the instance; a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 200m
             */
            cpu_request?: string;
            /**
             * @description The most CPU the instance may use (at least cpu_request); a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
             * @default 1000m
             */
            cpu_limit?: string;
            user_id?: string;
            vscode_version?: string;
            /**
             * Format: binary
             * @description tar.gz of the folder
             */
            workspace: string;
          };
        };
      };
      responses: {
        /** @description Accepted: the instance is queued */
        202: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Instance'];
          };
        };
        /** @description Bad input (malformed JSON/JSONC, invalid fields) */
        400: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description The token may not act for that user */
        403: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description A request with this Idempotency-Key is in progress */
        409: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description Upload or body too large */
        413: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description devcontainer.json is not supported or does not match the spec’s schema (`unsupported_devcontainer`: also hostRequirements above what this deployment gives an instance, or a GPU it requires), or a resource field is below its hostRequirements (`below_host_requirements`) */
        422: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description A per-user quota is reached */
        429: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** List instances (a user’s own; an admin’s all, or one user’s) */
    get: {
      parameters: {
        query?: {
          user_id?: string;
        };
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Instances */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['InstanceList'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances/{id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Get an instance */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description The instance */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Instance'];
          };
        };
        /** @description Bad input (malformed JSON/JSONC, invalid fields) */
        400: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    put?: never;
    post?: never;
    /** Delete an instance (never the user’s shared storage) */
    delete: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Deletion queued */
        202: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Instance'];
          };
        };
        /** @description Bad input (malformed JSON/JSONC, invalid fields) */
        400: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances/{id}/build-status': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Build status */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Status */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['BuildStatus'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances/{id}/build-logs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Build log; `follow=1` (or Accept: text/event-stream) streams it as Server-Sent Events until the end event */
    get: {
      parameters: {
        query?: {
          follow?: '1' | 'true';
          /** @description Resume after this event id (or Last-Event-ID) */
          after?: string;
        };
        header?: never;
        path: {
          id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description The log so far, or a live stream */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['BuildLogs'];
            'text/event-stream': string;
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances/{id}/logs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The instance’s own log: the launcher, the lifecycle commands (onCreateCommand … postAttachCommand) and the editor, from its container; kept after a failure or a delete (7 days). `follow=1` (or Accept: text/event-stream) streams it as Server-Sent Events */
    get: {
      parameters: {
        query?: {
          follow?: '1' | 'true';
          /** @description Resume after this event id (or Last-Event-ID) */
          after?: string;
        };
        header?: never;
        path: {
          id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description The log so far, or a live stream (ends with an `end` event when the instance failed or was deleted) */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['BuildLogs'];
            'text/event-stream': string;
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
        /** @description No such instance (or not the caller’s) */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/editor-versions': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The editor (VS Code) versions instances can run: what `vscode_version` may name (`1.100` picks the newest 1.100.x), the default first */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description The versions */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['EditorVersions'];
          };
        };
        /** @description No or wrong API token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/json': components['schemas']['Error'];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/seed/instances/{id}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** A workspace instance’s upload (tar.gz), for the instance to unpack on first start; Authorization: Bearer <the instance’s seeding token, from its Kubernetes Secret> */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description The archive */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            'application/octet-stream': string;
          };
        };
        /** @description Not this instance’s seeding token */
        401: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
        /** @description The instance has no workspace upload */
        404: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
        /** @description The upload is no longer stored */
        410: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/health': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Liveness */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description ok */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/healthz': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Liveness */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description ok */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/readyz': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Readiness (Redis reachable) */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description ready */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
        /** @description not ready */
        503: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/openapi.json': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** This document */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description OpenAPI 3.1 */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/docs': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** This document as a page */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description HTML */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Service description */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description name and description */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content?: never;
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    Error: {
      error: {
        code: string;
        message: string;
        details?: unknown;
      };
    };
    Instance: {
      instance_id: string;
      user_id?: string;
      /** @description Opens the editor: https://<BASE_DOMAIN>/instances/<id>?tkn=<access_token>, which redirects to the instance’s own origin (editor_url) and leaves a session cookie there */
      url: string;
      /** @description Opens this instance’s editor; empty when it was sealed with an earlier CODEBAY_SECRET_KEY */
      access_token: string;
      /** @enum {string} */
      status: 'Queued' | 'Building' | 'Built' | 'Cached' | 'Provisioning' | 'Running' | 'Failed' | 'Deleting' | 'Deleted';
      base_image: string | null;
      devcontainer_image: string | null;
      /** @description Build key (sha256 of everything the build reads) and whether the image was already in the registry */
      build?: {
        key?: string;
        /** @enum {string} */
        cache?: 'hit' | 'miss';
      } | null;
      build_logs_url: string;
      /** @description The instance’s own origin, https://<id>.<BASE_DOMAIN>/ (http://<id>.localhost:<port>/ on one machine) */
      editor_url?: string;
      error?: string | null;
      phase?: string | null;
      /** @description What the instance runs with, named as the create fields: the request’s (with defaults), raised to the devcontainer.json’s hostRequirements (cpus → cpu_request, memory → memory_request, storage → storage_size; limits at least the requests) */
      resources?: {
        /**
         * @description The workspace volume's size (its PersistentVolumeClaim's request on Kubernetes); a devcontainer.json's hostRequirements.storage is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
         * @default 2Gi
         */
        storage_size: string;
        /**
         * @description The user's shared volume's size (made by the user's first instance)
         * @default 5Gi
         */
        shared_storage_size: string;
        /**
         * @description Memory reserved for the instance; a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
         * @default 512Mi
         */
        memory_request: string;
        /**
         * @description The most memory the instance may use (at least memory_request); a devcontainer.json's hostRequirements.memory is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
         * @default 2Gi
         */
        memory_limit: string;
        /**
         * @description CPU reserved for the instance; a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
         * @default 200m
         */
        cpu_request: string;
        /**
         * @description The most CPU the instance may use (at least cpu_request); a devcontainer.json's hostRequirements.cpus is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts
         * @default 1000m
         */
        cpu_limit: string;
      };
      /**
       * Format: date-time
       * @description A Failed instance whose provisioning failed: until when what it left is kept for the platform’s operators to inspect (FAILED_INSTANCE_KEEP_SECONDS; Docker: the stopped container; Kubernetes: the objects and volume, the Deployment scaled to 0); removed then, or at once by a DELETE. Null when nothing is kept
       */
      kept_until?: string | null;
      /** @description Something that went wrong without stopping the instance: its image’s push failed after it started from the image its builder built (the image is not in the build cache) */
      warning?: string | null;
      /** @description devcontainer.json properties accepted but not applied as written (docs/conformance.md), and lifecycle commands that failed; shown in the build log too */
      warnings?: {
        property: string;
        message: string;
      }[];
      /** @description The lifecycle commands of the instance’s last start, as its launcher reported them (null until one ran) */
      lifecycle?: {
        /** @description The command the editor waited for (waitFor; default updateContentCommand) */
        wait_for?: string;
        commands?: {
          [key: string]: {
            /** @enum {string} */
            state?: 'running' | 'succeeded' | 'failed' | 'skipped';
            exit_code?: number | null;
            duration_ms?: number | null;
            /** Format: date-time */
            at?: string;
          };
        };
        /** @description postStartCommand ended: every command of the start ran (postAttachCommand runs per session) */
        ended?: boolean;
        /** @description false once a command failed; the ones after it were skipped */
        ok?: boolean;
      } | null;
      /** @description The instance’s own log (GET /api/instances/{id}/logs) */
      logs_url?: string;
      /** @description The folder the editor opens and lifecycle commands run in (devcontainer.json workspaceFolder; default /workspace). The instance’s own workspace volume is at workspaceMount’s target (default /workspace). */
      workspace_folder?: string;
      /** @description The config’s forwardPorts, each at its own origin https://<id>-<port>.<BASE_DOMAIN>/ (http://<id>-<port>.localhost:<port>/ on one machine), guarded by the instance’s access token like the editor; any other port of the instance is reachable the same way */
      ports?: {
        port: number;
        /** @description portsAttributes.<port>.label */
        label: string | null;
        /** @description Where the port is served */
        origin: string;
        /** @description Opens it: the origin with ?tkn=<access_token>, exchanged for a cookie of that origin */
        url: string;
      }[];
      vscode_version?: string;
      /** Format: date-time */
      created_at?: string;
      timings?: {
        [key: string]: string | null;
      };
      /** @description While the instance is Queued and its build waits for a builder: its place in the order builders take builds (first come, first served), and a rough estimate of when it starts. Null otherwise. */
      queue?: {
        /** @description 1 = the next build a free builder takes */
        position: number;
        /** @description Builds waiting, this one included */
        waiting: number;
        /** @description Waiting builds ahead of this one (position - 1) */
        builds_ahead: number;
        /** @description Builds running now */
        running: number;
        /** @description Seconds until a builder takes it: position × the mean duration of recent builds ÷ the builds running; null when no build finished lately or no builder is working */
        estimated_start_seconds: number | null;
      } | null;
    };
    EditorVersions: {
      versions: {
        /** @example 1.100.3 */
        vscode_version: string;
        /** @description The code-server release serving it (null when only configured) */
        code_server_version: string | null;
        /** @description What an instance runs when its request names no vscode_version */
        default: boolean;
      }[];
      /**
       * @description provisioner: the editor bundles the provisioners found and published; configuration: CODEBAY_VSCODE_VERSIONS
       * @enum {string}
       */
      source: 'provisioner' | 'configuration';
      /** Format: date-time */
      published_at?: string | null;
    };
    InstanceList: {
      instances: components['schemas']['Instance'][];
    };
    BuildStatus: {
      instance_id?: string;
      status?: string;
      error?: string | null;
      phase?: string | null;
    };
    BuildLogs: {
      instance_id?: string;
      status?: string;
      logs?: string;
      lines?: {
        id?: string;
        text?: string;
      }[];
      finished?: Record<string, never> | null;
    };
  };
  responses: never;
  parameters: never;
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
