import { Redis } from 'ioredis';

export { Redis };

/**
 * One ioredis connection. BullMQ needs `maxRetriesPerRequest: null` so that a
 * Redis restart makes commands wait for the reconnect instead of failing.
 */
export function createRedis(url: string, name: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, connectionName: name, enableReadyCheck: true });
}
