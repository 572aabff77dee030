import { readFileSync } from 'node:fs';

/** One instruction of a Dockerfile: its keyword and its arguments (continuation lines joined). */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** A simple Dockerfile parser: comments dropped, `\` continuations joined, split into stages at FROM. */
export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw) && pending === '') return; // a comment (or parser directive) line
    if (/^\s*#/.test(raw)) return; // a comment inside a continued instruction
    if (pending === '' && raw.trim() === '') return;
    if (pending === '') start = i + 1;
    const cont = /\\\s*$/.test(raw);
    pending += (pending ? ' ' : '') + raw.replace(/\\\s*$/, '').trim();
    if (cont) return;
    const m = /^(\w+)\s+([\s\S]*)$/.exec(pending);
    if (!m) throw new Error(`Dockerfile line ${start}: not an instruction: ${pending}`);
    instructions.push({ keyword: m[1].toUpperCase(), args: m[2].trim(), line: start });
    pending = '';
  });
  if (pending) throw new Error('Dockerfile ends inside a continued instruction');
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: bad FROM`);
      stages.push({ from: m[1], name: m[2], instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile line ${ins.line}: ${ins.keyword} before FROM`);
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return stages;
}

export const readDockerfile = () => parseDockerfile(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8'));

/** An exec-form (JSON array) argument, as ENTRYPOINT and CMD should be written. */
export function execForm(ins: Instruction): string[] {
  const v = JSON.parse(ins.args);
  if (!Array.isArray(v) || !v.every((w) => typeof w === 'string')) throw new Error(`${ins.keyword} is not in exec form`);
  return v;
}

/** ENV's KEY=VALUE pairs (the form with `=`; values without spaces or in double quotes). */
export function envOf(stage: Stage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) out[m[1]] = m[2].replace(/^"|"$/g, '');
  }
  return out;
}
