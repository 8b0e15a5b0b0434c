import { pino, type Logger } from 'pino';

export type { Logger };

/** pino JSON logs; anything that looks like a secret is redacted before it is written. */
export function createLogger(service: string, level: string): Logger {
  return pino({
    name: service,
    level,
    redact: {
      paths: [
        'accessToken',
        'access_token',
        'token',
        '*.accessToken',
        '*.access_token',
        '*.token',
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        'headers.cookie',
      ],
      censor: '[redacted]',
    },
  });
}
