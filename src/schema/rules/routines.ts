/** Functions, procedures and aggregates (created from the server's own definition). */
import { none, revokeDefaultPublic, s, type Rule } from './core.js';

export const func: Rule = {
  create: (f, ctx) => none([s(f.attrs.def), ...revokeDefaultPublic(f, ctx, 'FUNCTION')]),
  drop: (f) => none([`DROP FUNCTION ${f.meta.sql}`]),
  // CREATE OR REPLACE while the signature and result type stay
  alter: (o, n) => (o.attrs.args === n.attrs.args && o.attrs.result === n.attrs.result && o.attrs.def !== n.attrs.def ? { sql: [s(n.attrs.def)], hazards: [] } : null),
};

export const procedure: Rule = {
  create: (f, ctx) => none([s(f.attrs.def), ...revokeDefaultPublic(f, ctx, 'PROCEDURE')]),
  drop: (f) => none([`DROP PROCEDURE ${f.meta.sql}`]),
  alter: (o, n) => (o.attrs.args === n.attrs.args && o.attrs.def !== n.attrs.def ? { sql: [s(n.attrs.def)], hazards: [] } : null),
};

export const aggregate: Rule = {
  // no in-place change: dropped and recreated, together with what uses it (views…)
  create: (f, ctx) => none([s(f.attrs.def), ...revokeDefaultPublic(f, ctx, 'FUNCTION')]),
  drop: (f) => none([`DROP AGGREGATE ${f.meta.sql}`]),
};
