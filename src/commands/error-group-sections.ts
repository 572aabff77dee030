import type { Section } from '../output/output.js';

interface Grouped {
  byKind: Array<{ kind: string; count: number; oldest: Date | null; newest: Date | null }>;
  byErrorClass: Array<{ errorClass: string; count: number; kinds: string[]; newest: Date | null }>;
}

/** The "By kind" and "By error class" tables under a dead-letter or discarded-job listing. */
export function errorGroupSections(summary: Grouped): Section[] {
  return [
    {
      title: 'By kind',
      columns: [
        { header: 'kind', value: (g: Grouped['byKind'][number]) => g.kind },
        { header: 'count', value: (g: Grouped['byKind'][number]) => g.count },
        { header: 'oldest', value: (g: Grouped['byKind'][number]) => g.oldest },
        { header: 'newest', value: (g: Grouped['byKind'][number]) => g.newest },
      ],
      rows: summary.byKind,
    },
    {
      title: 'By error class',
      columns: [
        { header: 'count', value: (g: Grouped['byErrorClass'][number]) => g.count },
        { header: 'error class', value: (g: Grouped['byErrorClass'][number]) => g.errorClass, shrink: true },
        { header: 'kinds', value: (g: Grouped['byErrorClass'][number]) => g.kinds, shrink: true },
        { header: 'newest', value: (g: Grouped['byErrorClass'][number]) => g.newest },
      ],
      rows: summary.byErrorClass,
    },
  ];
}
