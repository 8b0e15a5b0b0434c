import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { hashToken, tokensFileSchema, type TokensFile } from './identity.ts';

// `tsx services/gateway/src/add-token.ts --user alice [--admin] --file /var/lib/codebay/tokens.json`
// Adds a new API token for a user to the tokens file (only its sha256 is stored) and prints
// the token once. The gateway picks the change up within seconds.
const { values } = parseArgs({
  options: { user: { type: 'string' }, admin: { type: 'boolean', default: false }, file: { type: 'string' } },
});
const file = values.file ?? process.env.CODEBAY_TOKENS_FILE;
if (!values.user || !file) {
  process.stderr.write('usage: add-token --user USER [--admin] --file TOKENS_FILE (or CODEBAY_TOKENS_FILE)\n');
  process.exit(2);
}
const current: TokensFile = existsSync(file) ? tokensFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))) : { tokens: [] };
const token = randomBytes(32).toString('base64url');
const next = tokensFileSchema.parse({ tokens: [...current.tokens, { sha256: hashToken(token), user: values.user, role: values.admin ? 'admin' : 'user' }] });
writeFileSync(`${file}.tmp`, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
renameSync(`${file}.tmp`, file);
process.stdout.write(`${token}\n`);
