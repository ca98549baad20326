/**
 * Shell completion for bash, zsh and fish, generated from the commander program itself:
 * commander gives no completion, and a hand-written script would fall behind the first time
 * a command or option is added. Every script is data (the command tree, flattened) plus a
 * small fixed walker that finds which command the cursor is in.
 */
import { type Command, Help } from "commander";

export const shells = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof shells)[number];

/** What an option's value or a command's argument completes to. */
type Value = { kind: "file" } | { kind: "choices"; choices: readonly string[] } | { kind: "word" };

interface OptionNode {
  /** Every spelling: `-v`, `--verbose`. */
  flags: string[];
  description: string;
  /** Undefined for a switch. */
  value?: Value;
}

interface CommandNode {
  /** Words from the program to this command; `` for the program. */
  path: string;
  description: string;
  children: Array<{ name: string; description: string }>;
  options: OptionNode[];
  /** Whether the command takes positional arguments (completed as files). */
  takesFiles: boolean;
}

/**
 * Values an option's metadata cannot tell (a plugin name is only known to the registry), by
 * long flag: `--plugin` → the plugins' names.
 */
export type KnownValues = Readonly<Record<string, readonly string[]>>;

function optionValue(
  flags: string,
  choices: readonly string[] | undefined,
  known?: readonly string[],
) {
  if (choices !== undefined) return { kind: "choices", choices } as const;
  if (known !== undefined) return { kind: "choices", choices: known } as const;
  // Option values named <file> or <dir> are paths; others (numbers, names, dates) are not.
  return /<(file|dir)>/.test(flags) ? ({ kind: "file" } as const) : ({ kind: "word" } as const);
}

/** The program's commands, depth first, each with its own options and the program's. */
export function commandTree(program: Command, known: KnownValues = {}): CommandNode[] {
  const help = new Help();
  const optionsOf = (command: Command): OptionNode[] =>
    help.visibleOptions(command).map((option) => ({
      flags: [option.short, option.long].filter((flag): flag is string => flag !== undefined),
      description: option.description,
      ...(option.required || option.optional
        ? {
            value: optionValue(option.flags, option.argChoices, known[option.long ?? ""]),
          }
        : {}),
    }));
  // Options of the program are accepted after any command (commander's default).
  const globals = optionsOf(program);
  // A command's own -h/--help stands for the program's.
  const withGlobals = (own: OptionNode[]): OptionNode[] => {
    const taken = new Set(own.flatMap((option) => option.flags));
    return [...own, ...globals.filter((option) => !option.flags.some((flag) => taken.has(flag)))];
  };
  const nodes: CommandNode[] = [];
  const walk = (command: Command, path: string): void => {
    // commander's implicit `help` command is in the list too: `op help apply` completes.
    const children = help.visibleCommands(command);
    nodes.push({
      path,
      description: command.description(),
      children: children.map((child) => ({
        name: child.name(),
        description: child.summary() || child.description(),
      })),
      options: path === "" ? globals : withGlobals(optionsOf(command)),
      takesFiles: command.registeredArguments.length > 0,
    });
    for (const child of command.commands)
      walk(child, path === "" ? child.name() : `${path} ${child.name()}`);
  };
  walk(program, "");
  return nodes;
}

/** Text inside single quotes in sh, bash, zsh and fish alike. */
function quoted(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** fish's single quotes escape `'` and `\` with a backslash. */
function fishQuoted(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** Where the command's words end: the walker in bash and zsh shares these tables. */
function shTables(tree: CommandNode[]): string {
  const cases = (body: (node: CommandNode) => string[]): string =>
    tree
      .map((node) => {
        const lines = body(node);
        return lines.length === 0
          ? ""
          : `    ${quoted(node.path)})\n${lines.map((line) => `      ${line}\n`).join("")}      ;;\n`;
      })
      .join("");
  const listing = (pairs: Array<[string, string]>): string[] =>
    pairs.length === 0
      ? []
      : [
          `printf '%s\\t%s\\n' ${pairs.map(([name, text]) => `${quoted(name)} ${quoted(oneLine(text))}`).join(" ")}`,
        ];
  const valueCase = (node: CommandNode): string[] =>
    node.options
      .filter((option) => option.value !== undefined)
      .map((option) => {
        const value = option.value as Value;
        const answer = value.kind === "choices" ? `choices ${value.choices.join(" ")}` : value.kind;
        return `${option.flags.map((flag) => quoted(`${flag}`)).join("|")}) echo ${quoted(answer)}; return ;;`;
      });
  return `# Subcommands of a command path: name<TAB>description per line.
_op_commands() {
  case $1 in
${cases((node) => listing(node.children.map((child) => [child.name, child.description])))}  esac
}
# Options of a command path: flag<TAB>description per line.
_op_options() {
  case $1 in
${cases((node) => listing(node.options.flatMap((option) => option.flags.map((flag): [string, string] => [flag, option.description]))))}  esac
}
# What the option $2 of command path $1 takes: file, word, choices A B..., or nothing (a switch).
_op_value() {
  case $1 in
${cases((node) => {
  const inner = valueCase(node);
  return inner.length === 0 ? [] : ["case $2 in", ...inner.map((line) => `  ${line}`), "esac"];
})}  esac
}
# Whether command path $1 takes positional arguments (files).
_op_files() {
  case $1 in
${tree
  .filter((node) => node.takesFiles)
  .map((node) => `    ${quoted(node.path)}) return 0 ;;\n`)
  .join("")}  esac
  return 1
}
# The command path the words before the cursor name: $@ are those words, program excluded.
_op_path() {
  local path="" word skip=0 line
  for word in "$@"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case $word in
      --*=*) ;;
      -*) [ -n "$(_op_value "$path" "$word")" ] && skip=1 ;;
      *)
        while IFS= read -r line; do
          if [ "\${line%%\t*}" = "$word" ]; then
            path=\${path:+$path }$word
            break
          fi
        done <<EOF
$(_op_commands "$path")
EOF
        ;;
    esac
  done
  printf '%s\\n' "$path"
}
`;
}

function bashScript(tree: CommandNode[]): string {
  return `# bash completion for op, generated by \`op completion bash\`.
${shTables(tree)}
_op() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev="" path value line
  COMPREPLY=()
  path=$(_op_path "\${COMP_WORDS[@]:1:COMP_CWORD-1}")
  if [ "$COMP_CWORD" -gt 1 ]; then prev=\${COMP_WORDS[COMP_CWORD-1]}; fi
  case $prev in
    -*) value=$(_op_value "$path" "$prev") ;;
    *) value="" ;;
  esac
  case $value in
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    word) return ;;
    choices\\ *) mapfile -t COMPREPLY < <(compgen -W "\${value#choices }" -- "$cur"); return ;;
  esac
  local words=""
  if [[ $cur == -* ]]; then
    while IFS= read -r line; do words+=" \${line%%\t*}"; done < <(_op_options "$path")
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    return
  fi
  while IFS= read -r line; do words+=" \${line%%\t*}"; done < <(_op_commands "$path")
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  if _op_files "$path"; then
    compopt -o filenames 2>/dev/null
    mapfile -t -O "\${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
  fi
}
complete -F _op op
`;
}

function zshScript(tree: CommandNode[]): string {
  return `#compdef op
# zsh completion for op, generated by \`op completion zsh\`.
${shTables(tree)}
_op() {
  local path value line
  local -a entries
  path=$(_op_path "\${(@)words[2,CURRENT-1]}")
  value=""
  if (( CURRENT > 2 )) && [[ \${words[CURRENT-1]} == -* ]]; then
    value=$(_op_value "$path" "\${words[CURRENT-1]}")
  fi
  case $value in
    file) _files; return ;;
    word) _message 'value'; return ;;
    choices\\ *) compadd -- \${=value#choices }; return ;;
  esac
  if [[ $PREFIX == -* ]]; then
    for line in "\${(@f)$(_op_options "$path")}"; do
      [[ -n $line ]] && entries+=("\${\${line%%\t*}//:/\\\\:}:\${line#*\t}")
    done
    _describe -t options 'option' entries
    return
  fi
  for line in "\${(@f)$(_op_commands "$path")}"; do
    [[ -n $line ]] && entries+=("\${line%%\t*}:\${line#*\t}")
  done
  (( \${#entries} )) && _describe -t commands 'command' entries
  _op_files "$path" && _files
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _op "$@"
else
  compdef _op op
fi
`;
}

function fishScript(tree: CommandNode[]): string {
  const children = tree.flatMap((node) =>
    node.children.map((child) => fishQuoted(`${node.path}|${child.name}`)),
  );
  const valued = tree.flatMap((node) =>
    node.options
      .filter((option) => option.value !== undefined)
      .flatMap((option) => option.flags.map((flag) => fishQuoted(`${node.path}|${flag}`))),
  );
  const lines: string[] = [];
  for (const node of tree) {
    const at = `-n ${fishQuoted(`__op_at ${quoted(node.path)}`)}`;
    for (const child of node.children) {
      lines.push(
        `complete -c op ${at} -a ${fishQuoted(child.name)} -d ${fishQuoted(oneLine(child.description))}`,
      );
    }
    if (node.takesFiles) lines.push(`complete -c op ${at} -F`);
    for (const option of node.options) {
      const flags = option.flags
        .map((flag) => (flag.startsWith("--") ? `-l ${flag.slice(2)}` : `-s ${flag.slice(1)}`))
        .join(" ");
      const value = option.value;
      const takes =
        value === undefined
          ? ""
          : value.kind === "file"
            ? " -r -F"
            : value.kind === "choices"
              ? ` -x -a ${fishQuoted(value.choices.join(" "))}`
              : " -x";
      lines.push(
        `complete -c op ${at} ${flags}${takes} -d ${fishQuoted(oneLine(option.description))}`,
      );
    }
  }
  return `# fish completion for op, generated by \`op completion fish\`.
set -g __op_children ${children.join(" ")}
set -g __op_valued ${valued.join(" ")}
# The command path the words before the cursor name (the walker bash and zsh use, in fish).
function __op_path
    set -l path ''
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip -eq 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $word
            contains -- "$path|$word" $__op_valued; and set skip 1
        else if contains -- "$path|$word" $__op_children
            set path (string trim -- "$path $word")
        end
    end
    echo $path
end
function __op_at
    set -l path (__op_path)
    test "$path" = "$argv[1]"
end
complete -c op -f
${lines.join("\n")}
`;
}

/** The completion script for `shell`, made from `program` as it is now. */
export function completionScript(shell: Shell, program: Command, known: KnownValues = {}): string {
  const tree = commandTree(program, known);
  switch (shell) {
    case "bash":
      return bashScript(tree);
    case "zsh":
      return zshScript(tree);
    case "fish":
      return fishScript(tree);
  }
}
