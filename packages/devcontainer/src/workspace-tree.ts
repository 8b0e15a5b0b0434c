import { InputError, listProblems } from '@codebay/contracts';

/** A workspace entry as the build sees it: regular files by content, links by target. */
export interface WorkspaceFile {
  /** Normalised path inside the workspace (`a/b`, no leading `./`, no trailing `/`). */
  path: string;
  /** A hard link is the regular file it is once unpacked (the archive inspector records it so). */
  kind: 'file' | 'symlink' | 'dir';
  /** sha256 of a regular file's bytes. */
  sha256?: string;
  /** Executable bits matter to a build (feature install.sh); nothing else of the mode does. */
  executable?: boolean;
  linkTarget?: string;
}

/** A path that resolved: what is there once every symlink on the way is followed. */
export interface Resolved {
  ok: true;
  /**
   * Normalised workspace path (`a/b`; `''` is the root) of what the path names. For
   * `missing`, the first path that does not exist (a dangling link's target, `file/x`).
   */
  path: string;
  kind: 'file' | 'dir' | 'missing';
  /** The symlinks followed on the way, in order (workspace paths of the link entries). */
  links: string[];
}

/** A path that cannot be resolved inside the workspace, and the link that led there. */
export interface Unresolvable {
  ok: false;
  /** `escapes`: a `..` climbs above the root; `absolute`: a link names an absolute path; `too_many_links`: more than 40 links (a loop). */
  reason: 'escapes' | 'absolute' | 'too_many_links';
  /** The symlink whose target did it; absent when the path itself climbs out or is absolute. */
  link?: string;
  /** That link's target, as written. */
  target?: string;
  /** The symlinks followed before it failed, in order (the first 41 at most). */
  links: string[];
  /** One sentence naming the link and where it led: `link "a/l5" -> "l4/.." climbs above the workspace root`. */
  message: string;
}

export type Resolution = Resolved | Unresolvable;

/** Linux follows at most 40 symlinks in one lookup (MAXSYMLINKS, path_resolution(7)); more is ELOOP. */
export const MAX_LINK_HOPS = 40;

/** One path component in the trie of entries: a folder (an entry of its own or implied), a file or a link. */
interface Node {
  name: string;
  parent: Node | undefined;
  children: Map<string, Node>;
  /** The entry recorded here (the last one for a repeated path); none for an implied folder. */
  entry?: WorkspaceFile;
}

/** Where a walk ended: a node, the first path that does not exist, or a failure. */
type Walk =
  | { ok: true; kind: 'file' | 'dir'; node: Node; links: Node[] }
  | { ok: true; kind: 'missing'; path: string; links: Node[] }
  /** `capped`: refused for nesting deeper than {@link MAX_LINK_HOPS} below some other link, so not a fact about `link` alone. */
  | { ok: false; reason: Unresolvable['reason']; link?: Node; links: Node[]; message: string; capped?: boolean };

const components = (path: string) => path.split('/').filter((name) => name !== '' && name !== '.');

const kindOf = (node: Node): 'file' | 'dir' | 'symlink' =>
  node.entry === undefined || node.entry.kind === 'dir' ? 'dir' : node.entry.kind === 'symlink' ? 'symlink' : 'file';

/**
 * The layout of an uploaded workspace, built from its entry list alone (nothing is
 * unpacked): what each path really names once symlinks are followed, and the layout
 * problems that would make the unpacked folder differ from what was checked.
 *
 * `files` are normalised relative paths (the archive inspector's or the disk scanner's
 * list); a repeated path keeps its last entry, as extraction does. Folders implied by
 * deeper entries exist even without an entry of their own. Entries sit in a trie and each link is resolved once (memoised), so a
 * hostile list costs time in proportion to its size, not to links × hops × depth.
 */
export class WorkspaceTree {
  private readonly root: Node = { name: '', parent: undefined, children: new Map() };
  private readonly entries = new Map<string, WorkspaceFile>();
  /** Each link's resolution from its own folder, and the links being resolved (a cycle comes back to one). */
  private readonly followed = new Map<Node, Walk>();
  private readonly following = new Set<Node>();

  constructor(files: readonly WorkspaceFile[]) {
    for (const f of files) {
      if (f.path === '') continue;
      this.entries.set(f.path, f);
      let node = this.root;
      for (const name of components(f.path)) {
        let child = node.children.get(name);
        if (!child) {
          child = { name, parent: node, children: new Map() };
          node.children.set(name, child);
        }
        node = child;
      }
      node.entry = f;
    }
  }

  /** The entry recorded at exactly `path` (no link followed), if any. */
  entry(path: string): WorkspaceFile | undefined {
    return this.entries.get(path);
  }

  /**
   * Resolves a workspace-relative path the way the kernel would once the workspace is
   * unpacked: component by component, following a symlink wherever one sits (the last
   * component too), a relative target read from the link's folder, `..` applied to the
   * folder reached so far, at most {@link MAX_LINK_HOPS} links in all. Unlike the kernel,
   * `..` at the root and absolute targets are failures, not the host's root.
   *
   * Returns `{ ok: true, path, kind: 'file' | 'dir' | 'missing', links }` or
   * `{ ok: false, reason, link, target, links, message }`; never throws.
   */
  resolve(path: string): Resolution {
    const walk: Walk = path.startsWith('/')
      ? { ok: false, reason: 'absolute', links: [], message: `"${path}" is absolute` }
      : this.walk(this.root, components(path), undefined, path);
    const links = walk.links.map((l) => this.pathOf(l));
    if (walk.ok) return { ok: true, path: walk.kind === 'missing' ? walk.path : this.pathOf(walk.node), kind: walk.kind, links };
    if (walk.link === undefined) return { ok: false, reason: walk.reason, links, message: walk.message };
    return { ok: false, reason: walk.reason, link: this.pathOf(walk.link), target: walk.link.entry?.linkTarget ?? '', links, message: walk.message };
  }

  /**
   * Walks `names` from `start`; `from` is the link whose target they are (undefined for the
   * path asked about, `asked`). Links met on the way are resolved by {@link follow}.
   */
  private walk(start: Node, names: string[], from: Node | undefined, asked: string): Walk {
    let at = start;
    const links: Node[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (name === '..') {
        if (at.parent === undefined) {
          const what = from === undefined ? `"${asked}"` : this.describe(from);
          return { ok: false, reason: 'escapes', link: from, links, message: `${what} climbs above the workspace root` };
        }
        at = at.parent;
        continue;
      }
      const child = at.children.get(name);
      if (child === undefined) return { ok: true, kind: 'missing', path: this.childPath(at, name), links };
      let reached: Node = child;
      if (kindOf(child) === 'symlink') {
        const r = this.follow(child);
        if (!r.ok) return { ...r, links: [...links, ...r.links].slice(0, MAX_LINK_HOPS + 1) };
        links.push(...r.links);
        if (links.length > MAX_LINK_HOPS) return this.tooMany(child, links);
        if (r.kind === 'missing') return { ...r, links };
        reached = r.node;
      }
      if (kindOf(reached) === 'file') {
        // A file with components after it: ENOTDIR, nothing is there.
        const next = names[i + 1];
        return next === undefined
          ? { ok: true, kind: 'file', node: reached, links }
          : { ok: true, kind: 'missing', path: this.childPath(reached, next), links };
      }
      at = reached;
    }
    return { ok: true, kind: 'dir', node: at, links };
  }

  /**
   * A link's resolution from its own folder, remembered: its `links` start with the link
   * itself. Recursion stops 40 links deep (each level adds a link to the count, so deeper is
   * ELOOP anyway), which also keeps a chain of thousands of links off the call stack.
   */
  private follow(link: Node): Walk {
    const known = this.followed.get(link);
    if (known) return known;
    // Resolving a link cannot need the link itself: the kernel would go round until ELOOP.
    if (this.following.has(link))
      return { ok: false, reason: 'too_many_links', link, links: [link], message: `${this.describe(link)} leads back to itself (a loop)` };
    const depth = this.following.size;
    if (depth >= MAX_LINK_HOPS) return { ...this.tooMany(link, [link]), capped: true };
    this.following.add(link);
    const target = link.entry?.linkTarget ?? '';
    let r: Walk;
    if (target.startsWith('/')) r = { ok: false, reason: 'absolute', link, links: [link], message: `${this.describe(link)} is absolute` };
    // An empty target names nothing (ENOENT).
    else if (target === '') r = { ok: true, kind: 'missing', path: this.pathOf(link), links: [link] };
    else {
      const inner = this.walk(link.parent!, components(target), link, target);
      // A failure's list stops at 41 links: a chain of thousands would otherwise be copied at every step.
      r = { ...inner, links: [link, ...inner.links.slice(0, MAX_LINK_HOPS)] };
      if (r.ok && r.links.length > MAX_LINK_HOPS) r = this.tooMany(link, r.links);
    }
    this.following.delete(link);
    // A failure from the depth cap below another link says nothing of this link on its own.
    if (r.ok || !r.capped || depth === 0) this.followed.set(link, r);
    return r;
  }

  private tooMany(link: Node, links: Node[]): Extract<Walk, { ok: false }> {
    return {
      ok: false,
      reason: 'too_many_links',
      link,
      links,
      message: `more than ${MAX_LINK_HOPS} symbolic links followed, the last one ${this.describe(link)}`,
    };
  }

  private describe(link: Node): string {
    return `link "${this.pathOf(link)}" -> "${link.entry?.linkTarget ?? ''}"`;
  }

  private pathOf(node: Node): string {
    if (node.entry) return node.entry.path;
    const names: string[] = [];
    for (let n: Node | undefined = node; n?.parent !== undefined; n = n.parent) names.push(n.name);
    return names.reverse().join('/');
  }

  private childPath(node: Node, name: string): string {
    const parent = this.pathOf(node);
    return parent === '' ? name : `${parent}/${name}`;
  }

  /**
   * The entries a reader of `paths` touches, links followed: each path resolved (with the
   * links passed on the way, by target), the whole subtree of each folder reached, and for
   * every link inside such a subtree what it resolves to (a file, or a folder's subtree),
   * until nothing new comes in. What is missing or does not resolve inside the workspace
   * adds only the links passed before it. Returns entry paths, folders left out, unsorted.
   * Each folder is walked once, so the cost stays linear in the size of the list.
   */
  reach(paths: readonly string[]): string[] {
    const picked = new Set<Node>();
    const expanded = new Set<Node>();
    const queued = new Set<Node>();
    const links: Node[] = [];
    // A link passed on the way counts by its target; one inside a subtree is followed too.
    const pick = (node: Node, follow: boolean) => {
      picked.add(node);
      if (follow && kindOf(node) === 'symlink' && !queued.has(node)) {
        queued.add(node);
        links.push(node);
      }
    };
    const expand = (dir: Node) => {
      const stack = [dir];
      for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
        if (expanded.has(n)) continue;
        expanded.add(n);
        for (const child of n.children.values()) {
          if (child.entry && child.entry.kind !== 'dir') pick(child, true);
          stack.push(child);
        }
      }
    };
    const take = (w: Walk) => {
      for (const link of w.links) pick(link, false);
      if (w.ok && w.kind === 'file') pick(w.node, false);
      if (w.ok && w.kind === 'dir') expand(w.node);
    };
    for (const path of paths) if (!path.startsWith('/')) take(this.walk(this.root, components(path), undefined, path));
    for (let link = links.pop(); link !== undefined; link = links.pop()) take(this.follow(link));
    return [...picked].map((n) => n.entry!.path);
  }

  /** Every node under `node` that holds an entry, depth first, siblings by name (a loop, not recursion: paths can be deep). */
  private *entriesUnder(node: Node): Generator<Node> {
    const sorted = (n: Node) => [...n.children.values()].sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
    const stack = sorted(node);
    for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
      if (n.entry) yield n;
      stack.push(...sorted(n));
    }
  }

  /**
   * Every layout problem of the workspace, one sentence each naming the entry, depth first:
   * - a symlink whose full resolution leaves the workspace (`..` above the root, an absolute
   *   target, or more than 40 links or a loop: the kernel would stop there, but userland
   *   resolvers such as Go's `filepath.EvalSymlinks`, used by docker, follow up to 255). A
   *   dangling link that stays inside is fine.
   * - an entry under a symlink or a file (`a/b` while `a` is a link): the order of extraction
   *   would decide what lands where, so the checked layout is not the built one.
   */
  problems(): string[] {
    const out: string[] = [];
    for (const node of this.entriesUnder(this.root)) {
      const entry = node.entry!;
      const above = this.nonFolderAbove(node);
      if (above) {
        const what = kindOf(above) === 'symlink' ? 'a symbolic link' : 'a file';
        out.push(`"${entry.path}" lies under "${above.entry!.path}", which is ${what}: the order of extraction would decide what is built`);
      }
      if (entry.kind !== 'symlink') continue;
      const r = this.follow(node);
      if (r.ok) continue;
      out.push(
        r.link === node && r.message.startsWith(this.describe(node))
          ? `symbolic ${r.message}`
          : `symbolic link "${entry.path}" -> "${entry.linkTarget ?? ''}" does not resolve inside the workspace: ${r.message}`,
      );
    }
    return out;
  }

  /** The nearest node above `node` recorded as something other than a folder. */
  private nonFolderAbove(node: Node): Node | undefined {
    for (let n = node.parent; n !== undefined; n = n.parent) if (kindOf(n) !== 'dir') return n;
    return undefined;
  }
}

/**
 * Refuses a workspace whose layout is unsafe to unpack or to check by its entry list
 * ({@link WorkspaceTree.problems}). Throws `InputError('unsafe_archive')` (400, as the archive
 * inspector's own refusals) naming every problem: the first MAX_LISTED_PROBLEMS in the message
 * and in `details.problems`, `details.count` all of them.
 */
export function checkWorkspaceLayout(tree: WorkspaceTree): void {
  const problems = tree.problems();
  if (problems.length === 0) return;
  const { message, listed, count } = listProblems(problems, 'problems');
  throw new InputError('unsafe_archive', `workspace: ${message}`, { problems: listed, count });
}
