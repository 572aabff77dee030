import type { Command } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';

export function registerConfigCommands(program: Command, r: Registrar): void {
  const config = program.command('config').description(describe('config'));
  config
    .command('show')
    .description('Print the effective config (defaults < file < environment < flags), secrets masked')
    .addHelpText('after', '\nExamples:\n  $ opsctl config show\n  $ opsctl --config ./prod.json config show -o json\n')
    .action(
      r.wrap(async (ctx) => {
        const { maskedConfig } = await import('../config.js');
        const masked = maskedConfig(await ctx.config());
        const file = ctx.configFile;
        if (ctx.format === 'table') {
          ctx.io.stdout.write(`# source: ${file ?? 'built-in defaults (no config file found)'}\n${JSON.stringify(masked, null, 2)}\n`);
        } else {
          ctx.io.stdout.write(`${JSON.stringify({ command: 'config show', file, config: masked }, null, ctx.format === 'json' ? 2 : 0)}\n`);
        }
        return 0;
      }),
    );
}
