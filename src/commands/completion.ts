import type { Command, Option } from 'commander';
import { describe } from './descriptions.js';
import type { Registrar } from './registrar.js';
import { usageError } from '../errors.js';
import { valuesOf } from '../cli/completion-values.js';

/**
 * Shell completion scripts, generated at run time from the command tree commander holds
 * (commands, options, their fixed values), so they never drift from the commands.
 */

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

interface Node {
  /** "" for the root, else "propagations retry". */
  path: string;
  subcommands: string[];
  flags: string[];
  /** Flags taking a value → their fixed values ([] when free text). */
  values: Map<string, readonly string[]>;
  /** Flags whose value is a file. */
  files: string[];
}

const flagsOf = (o: Option) => [o.short, o.long].filter((f): f is string => Boolean(f));
const takesValue = (o: Option) => o.required || o.optional;
const visible = (c: Command) => c.commands.filter((s) => s.name() !== 'help' && !(s as unknown as { _hidden?: boolean })._hidden);

/** Every command of the tree with what completes after it; root options are valid anywhere. */
export function completionTree(program: Command): Node[] {
  const rootOptions = program.options as readonly Option[];
  const out: Node[] = [];
  const walk = (cmd: Command, path: string[]) => {
    // --version is the root's own; the other root options are accepted after any command.
    const options = cmd === program ? [...rootOptions] : [...(cmd.options as readonly Option[]), ...rootOptions.filter((o) => o.long !== '--version')];
    const values = new Map<string, readonly string[]>();
    const files: string[] = [];
    for (const o of options.filter(takesValue))
      for (const f of flagsOf(o)) {
        values.set(f, valuesOf(o) ?? []);
        if (/<file>/.test(o.flags)) files.push(f);
      }
    out.push({
      path: path.join(' '),
      subcommands: visible(cmd).map((c) => c.name()),
      flags: [...options.flatMap(flagsOf), '-h', '--help'],
      values,
      files,
    });
    for (const c of visible(cmd)) walk(c, [...path, c.name()]);
  };
  walk(program, []);
  return out;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function bashScript(tree: Node[]): string {
  const valueFlags = [...new Set(tree.flatMap((n) => [...n.values.keys()]))].sort();
  const cases = (f: (n: Node) => string | null) =>
    tree
      .map((n) => [n, f(n)] as const)
      .filter(([, v]) => v !== null && v !== '')
      .map(([n, v]) => `    ${q(n.path)}) echo ${q(v!)} ;;`)
      .join('\n');
  const valueCases = tree
    .flatMap((n) => [...n.values].filter(([, v]) => v.length).map(([flag, v]) => `    ${q(`${n.path}|${flag}`)}) echo ${q(v.join(' '))} ;;`))
    .join('\n');
  const fileCases = tree.flatMap((n) => n.files.map((flag) => `${q(`${n.path}|${flag}`)}`));
  return `# opsctl completion for bash, generated from opsctl's command tree.
# Load it with: source <(opsctl completion bash)   (or save it to a bash-completion directory)
_opsctl_value_flags=${q(` ${valueFlags.join(' ')} `)}
_opsctl_subcommands() {
  case "$1" in
${cases((n) => n.subcommands.join(' '))}
  esac
}
_opsctl_flags() {
  case "$1" in
${cases((n) => n.flags.join(' '))}
  esac
}
_opsctl_values() {
  case "$1|$2" in
${valueCases}
  esac
}
_opsctl_complete() {
  # zsh (bashcompinit) numbers arrays from 1; bash from 0.
  [[ -n \${ZSH_VERSION-} ]] && setopt localoptions ksharrays
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i skip=0
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$_opsctl_value_flags" in *" $w "*) skip=1; continue ;; esac
    [[ $w == -* ]] && continue
    case " $(_opsctl_subcommands "$path") " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  COMPREPLY=()
  if ((skip)); then
    local values head="" tail="$cur"
    values="$(_opsctl_values "$path" "$prev")"
    if [[ -n $values ]]; then
      # A comma-separated list (--class a,b): complete the item after the last comma.
      if [[ $cur == *,* ]]; then head="\${cur%,*},"; tail="\${cur##*,}"; fi
      COMPREPLY=($(compgen -P "$head" -W "$values" -- "$tail"))
    else
      case "$path|$prev" in ${fileCases.length ? fileCases.join('|') : "''"}) COMPREPLY=($(compgen -f -- "$cur")) ;; esac
    fi
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_opsctl_flags "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_opsctl_subcommands "$path")" -- "$cur"))
  fi
  return 0
}
complete -F _opsctl_complete opsctl
`;
}

/** zsh runs the bash function through bashcompinit: one definition of the walk, as kubectl once did. */
export function zshScript(tree: Node[]): string {
  return `#compdef opsctl
# opsctl completion for zsh, generated from opsctl's command tree.
# Load it with: source <(opsctl completion zsh)   (after compinit)
autoload -U +X bashcompinit && bashcompinit
${bashScript(tree).split('\n').slice(2).join('\n')}`;
}

export function fishScript(tree: Node[]): string {
  const paths = tree.filter((n) => n.path !== '').map((n) => n.path);
  const valueFlags = [...new Set(tree.flatMap((n) => [...n.values.keys()]))].sort();
  const lines: string[] = [
    "# opsctl completion for fish, generated from opsctl's command tree.",
    '# Load it with: opsctl completion fish | source   (or save it as ~/.config/fish/completions/opsctl.fish)',
    `set -g __opsctl_paths ${paths.map(q).join(' ')}`,
    `set -g __opsctl_value_flags ${valueFlags.map(q).join(' ')}`,
    'function __opsctl_path',
    '    set -l words (commandline -opc)',
    '    set -e words[1]',
    "    set -l path ''",
    '    set -l skip 0',
    '    for w in $words',
    '        if test $skip = 1',
    '            set skip 0',
    '            continue',
    '        end',
    '        if contains -- $w $__opsctl_value_flags',
    '            set skip 1',
    '            continue',
    '        end',
    "        string match -q -- '-*' $w; and continue",
    '        set -l next (string trim -- "$path $w")',
    '        contains -- $next $__opsctl_paths; and set path $next',
    '    end',
    '    echo $path',
    'end',
    'function __opsctl_at',
    '    test (__opsctl_path) = "$argv[1]"',
    'end',
    'complete -c opsctl -f',
  ];
  for (const n of tree) {
    const at = `-n ${q(`__opsctl_at ${q(n.path)}`)}`;
    for (const s of n.subcommands) lines.push(`complete -c opsctl ${at} -a ${q(s)}`);
    const seen = new Set<string>();
    for (const f of n.flags) {
      if (seen.has(f)) continue;
      seen.add(f);
      const values = n.values.get(f);
      const name = f.startsWith('--') ? `-l ${q(f.slice(2))}` : `-s ${q(f.slice(1))}`;
      const arg = values === undefined ? '' : values.length ? ` -x -a ${q(values.join(' '))}` : n.files.includes(f) ? ' -r -F' : ' -x';
      lines.push(`complete -c opsctl ${at} ${name}${arg}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const EXAMPLES = `
Examples:
  $ source <(opsctl completion bash)                 # this shell; add the line to ~/.bashrc to keep it
  $ opsctl completion bash > /etc/bash_completion.d/opsctl
  $ source <(opsctl completion zsh)                  # after compinit, e.g. in ~/.zshrc
  $ opsctl completion fish > ~/.config/fish/completions/opsctl.fish

The script completes commands, subcommands, flags and the fixed values of flags
(-o table|json|..., --class unowned,...), as this opsctl defines them.
`;

export function registerCompletionCommand(program: Command, r: Registrar): void {
  program
    .command('completion')
    .description(describe('completion'))
    .argument('<shell>', `the shell: ${SHELLS.join(', ')}`)
    .addHelpText('after', EXAMPLES)
    .action(
      r.wrap(async (ctx, shell: string) => {
        if (!(SHELLS as readonly string[]).includes(shell)) throw usageError(`completion: ${JSON.stringify(shell)} is not a supported shell: use one of ${SHELLS.join(', ')}.`);
        // The whole tree: start-up built only this command's.
        const { buildProgram } = await import('../cli/cli.js');
        const full = await buildProgram(ctx.io, () => {}, 'all');
        const tree = completionTree(full);
        const script = { bash: bashScript, zsh: zshScript, fish: fishScript }[shell as Shell](tree);
        ctx.io.stdout.write(script);
        return 0;
      }),
    );
}
