import type { Command } from 'commander';
import { describe } from './index.js';
import type { Registrar } from '../cli.js';

export function registerConfigCommands(program: Command, r: Registrar): void {
  const config = program.command('config').description(describe('config'));
  config
    .command('show')
    .description('Print the effective config (defaults < file < environment < flags), secrets masked')
    .addHelpText('after', '\nExamples:\n  $ opsctl config show\n  $ opsctl --config ./prod.json config show -o json\n')
    .action(
      r.wrap(async (ctx) => {
        const { maskedConfig, loadConfig } = await import('../config.js');
        const overrides = ctx.globals.databaseUrl ? { database: { url: ctx.globals.databaseUrl } } : {};
        const { config, file } = loadConfig({ configPath: ctx.globals.config, env: ctx.io.env, cwd: ctx.io.cwd, overrides });
        const masked = maskedConfig(config);
        if (ctx.format === 'table') {
          ctx.io.stdout.write(`# source: ${file ?? 'built-in defaults (no config file found)'}\n${JSON.stringify(masked, null, 2)}\n`);
        } else {
          ctx.io.stdout.write(`${JSON.stringify({ command: 'config show', file, config: masked }, null, ctx.format === 'json' ? 2 : 0)}\n`);
        }
        return 0;
      }),
    );
}
