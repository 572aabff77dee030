import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';

/** Dotted key → value rows, for the table form: one line per setting, arrays kept whole. */
function flatten(value: unknown, prefix = ''): Array<{ key: string; value: string }> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return [{ key: prefix, value: '{}' }];
    return entries.flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return [{ key: prefix, value: value === null ? '(unset)' : typeof value === 'string' ? value : JSON.stringify(value) }];
}

export function registerConfigCommands(program: Command, r: Registrar): void {
  const config = program
    .command('config')
    .description(describe('config'))
    .addHelpText('after', '\nExamples:\n  $ opsctl config show\n  $ opsctl --config ./prod.json config show -o json\n');
  config
    .command('show')
    .description('Print the effective config (defaults < file < environment < flags), secrets masked')
    .addHelpText(
      'after',
      '\nOutput: table (default; one line per setting), json (the whole document), ndjson (the same document on one line).\n\nExamples:\n  $ opsctl config show\n  $ opsctl --config ./prod.json config show -o json\n  $ opsctl config show -o json | jq .executions\n',
    )
    .action(
      r.wrap(async (ctx) => {
        const { parseFormat } = await import('../output/output.js');
        const format = parseFormat(ctx.format);
        const { maskedConfig } = await import('../config/config.js');
        const masked = maskedConfig(await ctx.config());
        const file = ctx.configFile ?? null;
        const { maskSecrets } = await import('../output/masking.js');
        // Beyond the URL: any value holding a known secret (a password pasted in a reason template).
        const write = (text: string) => ctx.io.stdout.write(maskSecrets(text, ctx.secrets()));
        if (format === 'table' || format === 'wide') {
          const rows = flatten(masked);
          const width = Math.max(...rows.map((row) => row.key.length));
          const { escapeControl } = await import('../output/terminal-text.js');
          // One line per setting: a newline in a value (a reason template) is shown, not obeyed.
          const lines = rows.map((row) => `${escapeControl(row.key.padEnd(width))}  ${escapeControl(row.value)}`);
          write(`# source: ${file ?? 'built-in defaults (no config file found)'}\n${lines.join('\n')}\n`);
        } else {
          write(`${JSON.stringify({ command: 'config show', file, config: masked }, null, format === 'json' ? 2 : 0)}\n`);
        }
        return 0;
      }),
    );
}
