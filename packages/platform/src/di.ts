// Dependency injection, one way for every service: tsyringe containers with explicit,
// typed injection tokens (no decorators and no emitted type metadata, so the compiled
// build and the tests resolve alike) and factories that pass named dependency objects.
import 'reflect-metadata';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';

export type { DependencyContainer };

/** An injection token that knows the type it resolves to. */
export type Token<T> = symbol & { readonly __resolves?: T };

/** A token named `name` (shown when resolving it fails). */
export function token<T>(name: string): Token<T> {
  return Symbol(name) as Token<T>;
}

/** A new container for one composition root (a child of tsyringe's root: tests may make many). */
export function createContainer(): DependencyContainer {
  return rootContainer.createChildContainer();
}

/** Registers a value. */
export function provideValue<T>(c: DependencyContainer, t: Token<T>, value: T): void {
  c.register<T>(t, { useValue: value });
}

/** Registers a singleton made on first resolve by `make`, which resolves what it needs from the container. */
export function provide<T>(c: DependencyContainer, t: Token<T>, make: (c: DependencyContainer) => T): void {
  c.register<T>(t, { useFactory: instanceCachingFactory<T>(make) });
}

/** Resolves a token; throws tsyringe's error naming the token when nothing is registered for it. */
export function resolve<T>(c: DependencyContainer, t: Token<T>): T {
  return c.resolve<T>(t);
}
