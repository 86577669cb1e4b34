/**
 * Compiled Go templates with docker's function set. `compile` parses once (parse errors are
 * thrown then), `Template.execute` renders data. Errors are `InvalidArgument` BerthErrors whose
 * message reads like docker's: `template parsing error: template: :1:2: executing "" at <.Foo>: …`.
 */
import { invalidArgument } from "../../base/mod.ts";
import { type ExecError, execute } from "./_exec.ts";
import { BUILTINS, DOCKER_FUNCS, type TemplateFunc } from "./_funcs.ts";
import { type ListNode, ParseError, parse } from "./_parse.ts";

/** A function callable from templates as `{{name arg1 arg2}}`; a throw becomes "error calling name: …". */
export type TemplateFunction = (...args: unknown[]) => unknown;

/** Options for `compile`. */
export interface CompileOptions {
  /** Template name shown in errors (`executing "NAME"`); docker uses "". */
  name?: string;
  /** Extra functions, added to (or replacing) the builtins and docker's helpers. */
  funcs?: Readonly<Record<string, TemplateFunction>>;
}

/** Options for `Template.execute`. */
export interface ExecuteOptions {
  /**
   * What a missing map key does: "default" yields `<no value>` (Go's default), "error" fails
   * with `map has no entry for key "X"` (docker inspect's raw-JSON fallback uses this).
   */
  missingKey?: "default" | "error";
  /**
   * Treat plain objects as Go structs rather than maps: unknown fields are errors
   * (`can't evaluate field X in type T`) and values print as `{v1 v2}`. Class instances and
   * objects passed through `markStruct` are structs either way.
   */
  structs?: boolean;
}

/** Prefix docker puts on every template error, parse or execution. */
const ERROR_PREFIX = "template parsing error: ";

function toFuncs(extra: Readonly<Record<string, TemplateFunction>> | undefined): Map<string, TemplateFunc> {
  const funcs = new Map<string, TemplateFunc>([...BUILTINS, ...DOCKER_FUNCS]);
  for (const [name, fn] of Object.entries(extra ?? {})) {
    if (!/^[\p{L}_][\p{L}\p{Nd}_]*$/u.test(name)) throw invalidArgument(`Invalid template function name "${name}"`);
    funcs.set(name, { call: (args) => fn(...args), min: 0, max: Number.POSITIVE_INFINITY });
  }
  return funcs;
}

/** A parsed template, ready to render any number of values. */
export class Template {
  /** The template source. */
  readonly text: string;
  /** The template name (shown in errors). */
  readonly name: string;
  #root: ListNode;
  #defines: Map<string, ListNode>;
  #funcs: Map<string, TemplateFunc>;

  /** Use `compile` rather than the constructor. */
  constructor(text: string, options?: CompileOptions) {
    this.text = text;
    this.name = options?.name ?? "";
    this.#funcs = toFuncs(options?.funcs);
    try {
      const parsed = parse(text, this.name, (n) => this.#funcs.has(n));
      this.#root = parsed.root;
      this.#defines = parsed.defines;
    } catch (err) {
      if (err instanceof ParseError) {
        throw invalidArgument(ERROR_PREFIX + err.message, { detail: { template: text, line: err.line } });
      }
      throw err;
    }
  }

  /** Names of the templates declared with `define` or `block`. */
  definedTemplates(): string[] {
    return [...this.#defines.keys()];
  }

  /** Renders `data`; throws an InvalidArgument BerthError on an execution error. */
  execute(data: unknown, options?: ExecuteOptions): string {
    const r = this.run(data, options);
    if (r.error) throw toBerthError(r.error, this.text);
    return r.output;
  }

  /**
   * Renders `data` and returns the output produced so far along with any error, with some
   * functions optionally replaced (docker renders table headers with identity functions).
   * For use inside this folder.
   */
  run(
    data: unknown,
    options?: ExecuteOptions & { funcOverrides?: ReadonlyMap<string, TemplateFunc> },
  ): { output: string; error: ExecError | undefined } {
    const funcs = options?.funcOverrides ? new Map([...this.#funcs, ...options.funcOverrides]) : this.#funcs;
    return execute(
      {
        text: this.text,
        parseName: this.name,
        name: this.name,
        root: this.#root,
        defines: this.#defines,
        funcs,
        model: { structs: options?.structs ?? false },
        missingKey: options?.missingKey ?? "default",
      },
      data,
    );
  }
}

function toBerthError(err: ExecError, text: string): Error {
  return invalidArgument(ERROR_PREFIX + err.message, { detail: { template: text, line: err.line, column: err.column } });
}

/** Parses a Go template with docker's functions; throws an InvalidArgument BerthError on a syntax error. */
export function compile(text: string, options?: CompileOptions): Template {
  return new Template(text, options);
}

/** Parses and renders in one step: `render("{{.Name}}", {Name: "x"})` is "x". */
export function render(text: string, data: unknown, options?: CompileOptions & ExecuteOptions): string {
  return compile(text, options).execute(data, options);
}
